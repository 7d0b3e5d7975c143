#!/usr/bin/env bash
# tests/tls/make-pki.sh DIR: a throw-away PKI for the TLS tests, made with the openssl CLI into DIR (which must
# exist; the caller's temp dir, removed by the caller). Nothing here is ever committed.
#
#   ca.pem                         the cluster's CA (RSA 2048)
#   infra1.pem infra2.pem infra3.pem (+ -key.pem)
#                                  member certificates (RSA 2048, serverAuth and clientAuth, SAN IP:127.0.0.1 and
#                                  DNS:localhost), signed by ca.pem
#   client.pem client-key.pem      a client certificate (EC P-256, clientAuth, CN=client), signed by ca.pem
#   other-ca.pem                   a second, unrelated CA
#   other-client.pem (+ -key.pem)  a client certificate signed by other-ca.pem
#   other-server.pem (+ -key.pem)  a server certificate for 127.0.0.1 signed by other-ca.pem
#   expired-client.pem (+ -key.pem) a client certificate signed by ca.pem that expired in 2021
#   expired-server.pem (+ -key.pem) a server certificate for 127.0.0.1 signed by ca.pem that expired in 2021
#   wrong-ip-client.pem (+ -key.pem) a client certificate signed by ca.pem whose only SAN is IP:10.11.12.13
#   peer1.pem peer2.pem peer3.pem (+ -key.pem)
#                                  peer certificates sharing CN=quorumd-peer (--peer-cert-allowed-cn), serverAuth
#                                  and clientAuth, SAN IP:127.0.0.1, signed by ca.pem
#   intruder.pem (+ -key.pem)      the same, but CN=intruder
#   other-peer.pem (+ -key.pem)    a peer certificate (CN=infra3, serverAuth and clientAuth, IP:127.0.0.1) signed
#                                  by other-ca.pem
#   revoked-client.pem (+ -key.pem) a client certificate (CN=revoked) signed by ca.pem, revoked in ca.crl
#   revoked-peer.pem (+ -key.pem)  a peer certificate like peer1.pem (CN=quorumd-peer), revoked in ca.crl
#   ca.crl                         ca.pem's CRL (PEM, valid 30 days) revoking revoked-client.pem and revoked-peer.pem
#   other-ca.crl                   other-ca.pem's CRL revoking nothing (a CRL from a CA the certificate is not from)
#   host-client.pem (+ -key.pem)   a client certificate (CN=client, SAN DNS:client.example.com) signed by ca.pem
#   cn-host-client.pem (+ -key.pem) a client certificate whose CN is client.example.com, without SANs
#   stranger-peer.pem (+ -key.pem) a peer certificate (CN=quorumd-peer, SAN IP:127.0.0.1, DNS:stranger.example)
#   intermediate-ca.pem (+ -key.pem) an intermediate CA signed by ca.pem
#   intermediate-client.pem (+ -key.pem) a client certificate (CN=client) signed by intermediate-ca.pem, the file
#                                  holding it and then intermediate-ca.pem (the chain a client sends)
#   intermediate-peer.pem (+ -key.pem) a peer certificate like peer1.pem signed by intermediate-ca.pem, chained so too
#   ca-intermediate.crl            ca.pem's CRL revoking intermediate-ca.pem (and nothing a leaf is)
set -euo pipefail
dir=${1:?usage: make-pki.sh DIR}
cd "$dir"
export OPENSSL_CONF=/dev/null

# new_ca NAME SUBJECT
new_ca() {
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$1-key.pem" -out "$1.pem" -days 30 -subj "$2" \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
}

# sign NAME CA KEYTYPE SUBJECT EXTENSIONS [START END]: a certificate NAME.pem with key NAME-key.pem, signed by
# CA. With START and END (YYYYMMDDHHMMSSZ) the validity is that window (openssl ca sets it; x509 -req cannot
# date a certificate in the past).
sign() {
	local name=$1 ca=$2 keytype=$3 subject=$4 extensions=$5
	case "$keytype" in
	rsa) openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$name-key.pem" 2>/dev/null ;;
	ec) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$name-key.pem" 2>/dev/null ;;
	esac
	openssl req -new -key "$name-key.pem" -subj "$subject" -out "$name.csr" 2>/dev/null
	printf '%s\n' "$extensions" | tr ';' '\n' >"$name.ext"
	if [ $# -ge 7 ]; then
		mkdir -p "$ca.db"
		: >"$ca.db/index.txt"
		cat >"$ca.db/ca.cnf" <<-CNF
			[ca]
			default_ca = test
			[test]
			database = $PWD/$ca.db/index.txt
			new_certs_dir = $PWD/$ca.db
			serial = $PWD/$ca.db/serial
			default_md = sha256
			policy = anything
			unique_subject = no
			[anything]
			commonName = supplied
		CNF
		openssl rand -hex 16 >"$ca.db/serial"
		openssl ca -batch -config "$ca.db/ca.cnf" -cert "$ca.pem" -keyfile "$ca-key.pem" -in "$name.csr" \
			-out "$name.pem" -startdate "$6" -enddate "$7" -extfile "$name.ext" -notext 2>/dev/null
	else
		openssl x509 -req -in "$name.csr" -CA "$ca.pem" -CAkey "$ca-key.pem" -CAcreateserial -days 30 \
			-sha256 -extfile "$name.ext" -out "$name.pem" 2>/dev/null
	fi
	rm -f "$name.csr" "$name.ext"
}

server_ext='basicConstraints=CA:FALSE;keyUsage=critical,digitalSignature,keyEncipherment;extendedKeyUsage=serverAuth,clientAuth;subjectAltName=IP:127.0.0.1,DNS:localhost'
client_ext='basicConstraints=CA:FALSE;keyUsage=critical,digitalSignature,keyEncipherment;extendedKeyUsage=clientAuth'

new_ca ca "/CN=quorumd test CA"
new_ca other-ca "/CN=another CA"
for member in infra1 infra2 infra3; do
	sign "$member" ca rsa "/CN=$member" "$server_ext"
done
sign client ca ec "/CN=client" "$client_ext"
sign other-client other-ca ec "/CN=client" "$client_ext"
sign other-server other-ca rsa "/CN=other" "$server_ext"
sign expired-client ca ec "/CN=expired" "$client_ext" 20200101000000Z 20210101000000Z
sign expired-server ca rsa "/CN=expired" "$server_ext" 20200101000000Z 20210101000000Z
sign wrong-ip-client ca ec "/CN=wrong-ip" "$client_ext;subjectAltName=IP:10.11.12.13"
for peer in peer1 peer2 peer3; do
	sign "$peer" ca ec "/CN=quorumd-peer" "$server_ext"
done
sign intruder ca ec "/CN=intruder" "$server_ext"
sign other-peer other-ca ec "/CN=infra3" "$server_ext"
sign revoked-client ca ec "/CN=revoked" "$client_ext"
sign revoked-peer ca ec "/CN=quorumd-peer" "$server_ext"
sign host-client ca ec "/CN=client" "$client_ext;subjectAltName=DNS:client.example.com"
sign cn-host-client ca ec "/CN=client.example.com" "$client_ext"
sign stranger-peer ca ec "/CN=quorumd-peer" "${server_ext%,DNS:localhost},DNS:stranger.example"
sign intermediate-ca ca rsa "/CN=quorumd test intermediate CA" \
	'basicConstraints=critical,CA:TRUE;keyUsage=critical,keyCertSign,cRLSign'
sign intermediate-client intermediate-ca ec "/CN=client" "$client_ext"
sign intermediate-peer intermediate-ca ec "/CN=quorumd-peer" "$server_ext"
for leaf in intermediate-client intermediate-peer; do
	cat intermediate-ca.pem >>"$leaf.pem"
done

# crl CA CERT...: CA.crl revoking each CERT (openssl ca keeps the revocations in a throw-away database).
crl() {
	local ca=$1 cert
	shift
	rm -rf "$ca.crldb"
	mkdir "$ca.crldb"
	: >"$ca.crldb/index.txt"
	cat >"$ca.crldb/ca.cnf" <<-CNF
		[ca]
		default_ca = test
		[test]
		database = $PWD/$ca.crldb/index.txt
		default_md = sha256
		crlnumber = $PWD/$ca.crldb/crlnumber
	CNF
	echo 01 >"$ca.crldb/crlnumber"
	for cert in "$@"; do
		openssl ca -batch -config "$ca.crldb/ca.cnf" -cert "$ca.pem" -keyfile "$ca-key.pem" -revoke "$cert" \
			-crl_reason keyCompromise 2>/dev/null
	done
	openssl ca -batch -config "$ca.crldb/ca.cnf" -cert "$ca.pem" -keyfile "$ca-key.pem" -gencrl -crldays 30 \
		-out "$ca.crl" 2>/dev/null
	rm -rf "$ca.crldb"
}
crl other-ca
# ca.pem's CRL of the intermediate CA first (crl writes ca.crl), then ca.crl itself.
crl ca intermediate-ca.pem
mv ca.crl ca-intermediate.crl
crl ca revoked-client.pem revoked-peer.pem
rm -rf ./*.db ./*.srl
