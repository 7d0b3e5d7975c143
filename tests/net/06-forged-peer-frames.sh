#!/usr/bin/env bash
# tests/net/06-forged-peer-frames.sh PATH/quorumd PATH/quorumctl PATH/forge-peer-frame: authenticated peers
# (--peer-frame-key-file, dataplane/frame_mac.h). Three members on one bridge: member 1 on --dataplane=dpdk (its
# af_packet port on qv1, 10.77.0.1 in its own stack), members 2 and 3 on --dataplane=udp each in a namespace
# of its own (10.77.0.2-3), so both transports seal and check; and an outsider on the same segment
# (10.77.0.4, a namespace of its own) running forge-peer-frame:
# well-formed frames with a valid CRC32C in a member's name, carrying a forced MsgVote (context
# CampaignTransfer, so no leader lease shields it) with a term 1000 higher, and a MsgApp with a term 500
# higher whose one entry puts a key, in one frame and in four (a 5000-byte value), with no MAC and
# with a random one.
#
# 1. Keyed cluster (one shared key file): the forgeries change nothing (term, leader, no forged key on
#    any member, writes still commit) and every forged frame is counted in drop_bad_mac.
# 2. Control, proving the attack and the checks are real: the same forgeries at a cluster without a key
#    file raise the term and a member applies the forged put; each member warned at start that peers are
#    unauthenticated.
# 3. Members whose key files differ never elect a leader, and drop_bad_mac grows on each.
# 4. A key file under 16 bytes: quorumd exits naming the file.
#
# NET_FORGE overrides the forge tool (like NET_QUORUMD / NET_QUORUMCTL, see dpdk_cluster.sh).
FORGE_ARGUMENT=${3:-}   # dpdk_cluster.sh keeps only the first two arguments
source "$(dirname "$0")/dpdk_cluster.sh"
FORGE=$(realpath "${NET_FORGE:-$FORGE_ARGUMENT}")

net_segment 4
for i in 2 3 4; do net_isolate "$i"; done

KEY=$TMP/peer.key
head -c 32 /dev/urandom >"$KEY"

# start_trio PREFIX KEY1 KEY2 KEY3: members PREFIX1..3 on addresses 1..3 (1 on dpdk, 2 and 3 on udp);
# KEYi "" for no key file.
start_trio() {
	local p=$1 i ic
	shift
	for i in 1 2 3; do add_dpdk_member "$p$i" "$i"; done
	ic=$(initial_cluster "${p}1" "${p}2" "${p}3")
	for i in 1 2 3; do
		local key=()
		[ -z "${!i}" ] || key=(--peer-frame-key-file "${!i}")
		if [ "$i" = 1 ]; then
			start_dpdk "$p$i" "$ic" new "${key[@]}"
		else
			start_udp "$p$i" "$i" "$ic" "${key[@]}"
		fi
	done
}

stop_trio() { local i; for i in 1 2 3; do stop_member "$1$i"; done; }

declare -A SENT=()   # member name -> forged frames sent to it

# attack PREFIX: from 10.77.0.4, forgeries at each member I in the name of member I+1, built from the
# target's own term and last index (so the append would match its log if it were accepted).
attack() {
	local p=$1 cid i target other tid oid term index n total
	cid=$(cluster_id "${p}1")
	[ -n "$cid" ] || fail "no cluster id in ${p}1's log"
	for i in 1 2 3; do
		target=$p$i
		other=$p$((i % 3 + 1))
		tid=$(member_id "$target")
		oid=$(member_id "$other")
		term=$(status_field "$target" 7)
		index=$(status_field "$target" 8)
		[ -n "$tid" ] && [ -n "$oid" ] && [ -n "$term" ] && [ -n "$index" ] || fail "no status from $target or $other"
		local common=(--host "$(member_ip "$i")" --port 2380 --cluster "$cid" --from "$oid" --to "$tid" --repeat 3)
		total=0
		# The appends first: after the vote's higher term they would be stale.
		for mac in zero random; do
			n=$(in_member 4 "$FORGE" "${common[@]}" --mac "$mac" app $((term + 500)) "$term" "$index" $((index + 1)) \
				"forged-$target-$mac" forged)
			total=$((total + n))
			n=$(in_member 4 "$FORGE" "${common[@]}" --mac "$mac" app $((term + 500)) "$term" "$index" $((index + 1)) \
				"forged-big-$target-$mac" @5000)
			total=$((total + n))
		done
		for mac in zero random; do
			n=$(in_member 4 "$FORGE" "${common[@]}" --mac "$mac" vote $((term + 1000)) $((term + 1000)) $((index + 1000000)))
			total=$((total + n))
		done
		SENT[$target]=$total
		log "forged $total frames at $target (term $term, index $index) in ${other}'s name"
	done
}

# forged_keys NAME: the forged keys (and values) NAME has (serializable: its own state, whoever leads).
forged_keys() {
	"$QUORUMCTL" --control-socket "$(sock "$1")" --command-timeout=2s get forged --prefix \
		--consistency=s 2>/dev/null | grep . || true
}

# ---- 1. a keyed cluster shrugs the forgeries off ----
start_trio k "$KEY" "$KEY" "$KEY"
wait_ready 60 k1 k2 k3
for n in k1 k2 k3; do
	log_has "$n" "peer frames carry a MAC keyed from the peer frame key file" || fail "$n did not log its key file"
	log_has "$n" "peer traffic is unauthenticated" && fail "$n warned about unauthenticated peers despite its key"
	put_get "$n" "before-$n" v
done
wait_until "every member applied the leader's index" 20 applied_converged k1 k2 k3
declare -A TERM=() BAD=()
LEADER_BEFORE=$LEADER
for n in k1 k2 k3; do
	TERM[$n]=$(status_field "$n" 7)
	BAD[$n]=$(counter "$n" drop_bad_mac)
	assert_eq "drop_bad_mac of $n among members sharing a key" 0 "${BAD[$n]}"
done
attack k
# Three election timeouts (1 s each by default) for a forged vote or term to take effect.
sleep 3
wait_leader 10 k1 k2 k3
assert_eq "leader after the forgeries" "$LEADER_BEFORE" "$LEADER"
for n in k1 k2 k3; do
	assert_eq "term of $n after the forgeries" "${TERM[$n]}" "$(status_field "$n" 7)"
	assert_eq "forged keys on $n" "" "$(forged_keys "$n")"
	bad=$(counter "$n" drop_bad_mac)
	[ "$((bad - BAD[$n]))" -ge "${SENT[$n]}" ] ||
		fail "$n counted $((bad - BAD[$n])) drop_bad_mac, but ${SENT[$n]} forged frames were sent to it"
	log "$n: term ${TERM[$n]} unchanged, leader $LEADER, drop_bad_mac +$((bad - BAD[$n])) (${SENT[$n]} forged)"
	put_get "$n" "after-$n" v
done
stop_trio k

# ---- 2. control: without a key the same forgeries take effect ----
start_trio o "" "" ""
wait_ready 60 o1 o2 o3
for n in o1 o2 o3; do
	log_has "$n" "peer traffic is unauthenticated: no --peer-cert-file nor --peer-frame-key-file" || fail "$n did not warn about unauthenticated peers"
	put_get "$n" "before-$n" v
done
wait_until "every member applied the leader's index" 20 applied_converged o1 o2 o3
OPEN_TERM=$(status_field o1 7)
attack o
term_rose() {
	local n t
	for n in o1 o2 o3; do
		t=$(status_field "$n" 7)
		[ -n "$t" ] && [ "$t" -ge $((OPEN_TERM + 500)) ] && return 0
	done
	return 1
}
wait_until "the forged term (>= $((OPEN_TERM + 500))) on a member without a key" 15 term_rose
# The first target's forged append matched its log: it commits and applies the forged put (its state
# machine then differs from the others': the harm the MAC prevents).
forged_anywhere() { [ -n "$(forged_keys o1)$(forged_keys o2)$(forged_keys o3)" ]; }
wait_until "a forged put applied by a member without a key" 10 forged_anywhere
for n in o1 o2 o3; do
	log "without a key, $n: term $(status_field "$n" 7) (was $OPEN_TERM), forged keys: $(forged_keys "$n" | tr '\n' ' ')"
done
stop_trio o

# ---- 3. different key files: no cluster ----
for i in 1 2 3; do head -c 32 /dev/urandom >"$TMP/own-$i.key"; done
start_trio d "$TMP/own-1.key" "$TMP/own-2.key" "$TMP/own-3.key"
all_drop() {
	local n c
	for n in d1 d2 d3; do
		c=$(counter "$n" drop_bad_mac)
		[ -n "$c" ] && [ "$c" -gt 10 ] || return 1
	done
}
wait_until "drop_bad_mac growing on every member with its own key" 20 all_drop
sleep 3 # beyond the first elections
for n in d1 d2 d3; do
	assert_eq "is leader, $n (keys differ)" false "$(status_field "$n" 5)"
	log "$n with its own key: drop_bad_mac $(counter "$n" drop_bad_mac), messages_in $(counter "$n" messages_in), no leader"
done
has_leader d1 d2 d3 && fail "members with different key files elected a leader"
stop_trio d

# ---- 4. a short key file is refused at start ----
printf 'too short' >"$TMP/short.key"
add_dpdk_member s1 2
start_udp s1 2 "s1=${PEER[s1]}" --peer-frame-key-file "$TMP/short.key"
wait_exit s1 10
[ "$EXIT_CODE" -ne 0 ] || fail "quorumd started with a 9-byte key file"
log_has s1 "peer frame key file $TMP/short.key: 9 bytes, need at least 16" || fail "no error naming the short key file: $(tail -n 3 "$TMP/s1.log")"
log "a 9-byte key file: quorumd exited $EXIT_CODE naming it"
