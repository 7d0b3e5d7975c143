// tests/tls/npm-client/client.js ENDPOINT PKI_DIR: npm's etcd3 client over TLS. With the trusted client
// certificate: put, get, a txn, a watch, a lease and member list; then clients that must be refused (no client
// certificate, a revoked one, one trusting another CA), each printed as "refused" when its put fails or has not
// succeeded within the dial timeout. One line per step on stdout, so the test compares the whole output.
'use strict';
const fs = require('fs');
const { Etcd3 } = require('etcd3');
const { Policy } = require('cockatiel');

const [endpoint, pki] = process.argv.slice(2);
const read = (name) => fs.readFileSync(`${pki}/${name}`);

// No retries and no circuit breaker: a refusal shows at the first call, not after the library's back-off.
function client(credentials) {
  return new Etcd3({
    hosts: endpoint,
    credentials,
    dialTimeout: 3000,
    faultHandling: { host: () => Policy.noop, global: Policy.noop },
  });
}

async function refused(description, credentials) {
  const etcd = client(credentials);
  let timer;
  const timeout = new Promise((resolve) => { timer = setTimeout(() => resolve('refused (no answer)'), 6000); });
  const attempt = etcd.put('npm-refused').value(description).then(() => 'ACCEPTED', () => 'refused');
  const outcome = await Promise.race([attempt, timeout]);
  clearTimeout(timer);
  etcd.close();
  console.log(`${description}: ${outcome.startsWith('refused') ? 'refused' : outcome}`);
}

async function main() {
  const etcd = client({
    rootCertificate: read('ca.pem'),
    certChain: read('client.pem'),
    privateKey: read('client-key.pem'),
  });
  await etcd.put('npm-key').value('npm-value');
  console.log(`get: npm-key=${await etcd.get('npm-key').string()}`);
  const txn = await etcd.if('npm-key', 'Value', '==', 'npm-value')
    .then(etcd.put('npm-key').value('changed by a txn'))
    .else(etcd.put('npm-key').value('wrong branch'))
    .commit();
  console.log(`txn succeeded: ${txn.succeeded}, now ${await etcd.get('npm-key').string()}`);
  const watcher = await etcd.watch().key('npm-watched').create();
  const seen = new Promise((resolve) => watcher.on('put', (kv) => resolve(kv)));
  await etcd.put('npm-watched').value('seen by the watch');
  const kv = await seen;
  console.log(`watch: PUT ${kv.key.toString()}=${kv.value.toString()}`);
  await watcher.cancel();
  const lease = etcd.lease(30);
  await lease.put('npm-leased').value('with a lease');
  const leased = await etcd.get('npm-leased').exec();
  console.log(`lease: npm-leased attached ${leased.kvs[0].lease === await lease.grant()}`);
  await lease.revoke();
  console.log(`lease revoked: npm-leased is ${await etcd.get('npm-leased').string()}`);
  const members = await etcd.cluster.memberList({});
  console.log(`members: ${members.members.map((m) => `${m.name} ${m.clientURLs.join(',')}`).join('; ')}`);
  etcd.close();

  await refused('no client certificate', { rootCertificate: read('ca.pem') });
  await refused('revoked certificate', {
    rootCertificate: read('ca.pem'), certChain: read('revoked-client.pem'), privateKey: read('revoked-client-key.pem'),
  });
  await refused('trusting another CA', {
    rootCertificate: read('other-ca.pem'), certChain: read('client.pem'), privateKey: read('client-key.pem'),
  });
}

main().then(() => process.exit(0), (error) => {
  console.error(error && error.stack ? error.stack : error);
  process.exit(1);
});
