# tests/etcdctl/grpc-raw.sh: single gRPC calls made by hand with curl (HTTP/2 with prior knowledge), for what
# etcdctl cannot do on purpose: send a token of our choosing (a forged one, an old one, one obtained through
# another member) to a member of our choosing. Sourced after lib.sh (uses TMP, PYTHON, fail).

# pb_string FIELD TEXT: a protobuf length-delimited field holding TEXT (under 128 bytes), as printf escapes.
pb_string() {
	local field=$1 text=$2 out k
	printf -v out '\\x%02x\\x%02x' $(((field << 3) | 2)) "${#text}"
	for ((k = 0; k < ${#text}; k++)); do
		printf -v out '%s\\x%02x' "$out" "'${text:k:1}"
	done
	printf '%s' "$out"
}

# pb_message FIELD MESSAGE: a length-delimited field holding MESSAGE (printf escapes, under 128 bytes), as printf
# escapes: for messages within messages.
pb_message() {
	local length
	length=$(printf "$2" | wc -c)
	printf '\\x%02x\\x%02x%s' $((($1 << 3) | 2)) "$length" "$2"
}

# grpc_raw URL PATH MESSAGE [HEADER...]: calls PATH (e.g. /etcdserverpb.KV/Range) on URL with MESSAGE (printf
# escapes of the protobuf request; "-": no request body at all, the HEADERS frame ends the client's side) and
# extra request HEADERs ("token: ..."); sets GRPC_STATUS and GRPC_MESSAGE from the trailers and leaves the
# response body (gRPC's length-prefixed messages) in TMP/grpc.body.
grpc_raw() {
	local url=$1 path=$2 message=$3 header
	shift 3
	local headers=(-H "content-type: application/grpc" -H "te: trailers")
	for header in "$@"; do headers+=(-H "$header"); done
	local body=(--data-binary @"$TMP/grpc.request")
	[ "$message" != - ] || body=(-X POST)
	printf "${message#-}" >"$TMP/grpc.message"
	local length
	length=$(stat -c %s "$TMP/grpc.message")
	{
		printf '\x00'
		printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $((length >> 24 & 255)) $((length >> 16 & 255)) \
			$((length >> 8 & 255)) $((length & 255)))"
		cat "$TMP/grpc.message"
	} >"$TMP/grpc.request"
	# A server that answers before it read the request (an unknown method: a trailers-only answer) resets
	# the rest of the stream, as grpc-go does; curl may then exit 92 although the answer is complete, so
	# the answer's grpc-status decides.
	# curl can also lose the answer to that reset (exit 92, no headers written): the call is asked again,
	# at most three times.
	local rc attempt
	for attempt in 1 2 3; do
		rc=0
		curl -s --max-time 20 --http2-prior-knowledge "${headers[@]}" "${body[@]}" \
			-D "$TMP/grpc.headers" -o "$TMP/grpc.body" "$url$path" || rc=$?
		[ "$rc" -eq 0 ] || grep -q '^grpc-status:' "$TMP/grpc.headers" 2>/dev/null && break
		[ "$rc" -eq 92 ] || break
	done
	[ "$rc" -eq 0 ] || grep -q '^grpc-status:' "$TMP/grpc.headers" 2>/dev/null || fail "curl $url$path failed ($rc)"
	GRPC_STATUS=$(sed -n 's/^grpc-status: *\([0-9]*\).*/\1/p' "$TMP/grpc.headers" | tr -d '\r')
	GRPC_MESSAGE=$(sed -n 's/^grpc-message: *//p' "$TMP/grpc.headers" | tr -d '\r')
}

# grpc_field NUMBER: the first top-level length-delimited field NUMBER of the first response message, as text.
grpc_field() {
	"$PYTHON" - "$TMP/grpc.body" "$1" <<'EOF'
import sys
data = open(sys.argv[1], 'rb').read()
want = int(sys.argv[2])
if len(data) < 5:
    sys.exit(0)
size = int.from_bytes(data[1:5], 'big')
message, at = data[5:5 + size], 0
def varint():
    global at
    value, shift = 0, 0
    while True:
        byte = message[at]
        at += 1
        value |= (byte & 0x7f) << shift
        shift += 7
        if byte < 0x80:
            return value
while at < len(message):
    tag = varint()
    field, wire = tag >> 3, tag & 7
    if wire == 0:
        varint()
    elif wire == 2:
        length = varint()
        if field == want:
            sys.stdout.write(message[at:at + length].decode('latin-1'))
            break
        at += length
    else:
        break
EOF
}

# authenticate URL USER PASSWORD: sets TOKEN through Authenticate on URL (fails the test if refused).
authenticate() {
	grpc_raw "$1" /etcdserverpb.Auth/Authenticate "$(pb_string 1 "$2")$(pb_string 2 "$3")"
	[ "$GRPC_STATUS" = 0 ] || fail "Authenticate $2 on $1: grpc-status $GRPC_STATUS $GRPC_MESSAGE"
	TOKEN=$(grpc_field 2)
	[ -n "$TOKEN" ] || fail "Authenticate $2 on $1 gave no token"
}

# range_with_token URL KEY TOKEN [HEADER...]: a Range of KEY with TOKEN ("" for none); GRPC_STATUS, GRPC_MESSAGE.
range_with_token() {
	local url=$1 key=$2 token=$3
	shift 3
	if [ -n "$token" ]; then
		grpc_raw "$url" /etcdserverpb.KV/Range "$(pb_string 1 "$key")" "token: $token" "$@"
	else
		grpc_raw "$url" /etcdserverpb.KV/Range "$(pb_string 1 "$key")" "$@"
	fi
}
