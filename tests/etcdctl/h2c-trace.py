#!/usr/bin/python3
# h2c-trace.py LISTEN_PORT TARGET_PORT LOGFILE: a logging TCP proxy on 127.0.0.1 for cleartext HTTP/2 (gRPC):
# forwards LISTEN_PORT to TARGET_PORT and logs, per connection and direction, every HEADERS frame decoded
# (pseudo-headers, metadata, grpc-status/grpc-message), DATA frame lengths with their first 48 bytes in hex,
# RST_STREAM, GOAWAY, PING and non-ACK SETTINGS. How the protocol facts in README.md were observed:
#     /usr/bin/python3 tests/etcdctl/h2c-trace.py 25701 2379 /tmp/trace.log &
#     ETCDCTL_API=3 etcdctl --endpoints=http://127.0.0.1:25701 get foo; cat /tmp/trace.log
# Needs Debian's python3-hpack (a pyenv python does not see it: use /usr/bin/python3).
import socket, sys, threading, struct, hpack, time
lp, tp, logf = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
out = open(logf, 'a', buffering=1)
lock = threading.Lock()
FT = {0:'DATA',1:'HEADERS',2:'PRIORITY',3:'RST_STREAM',4:'SETTINGS',5:'PUSH_PROMISE',6:'PING',7:'GOAWAY',8:'WINDOW_UPDATE',9:'CONTINUATION'}
def log(conn, d, s):
    with lock: out.write('%.3f c%d %s %s\n' % (time.time(), conn, d, s))
def pump(src, dst, conn, d, preface):
    dec = hpack.Decoder(); dec.max_allowed_table_size = 1 << 20
    buf = b''; need_preface = preface
    while True:
        try: data = src.recv(65536)
        except OSError: data = b''
        if not data:
            try: dst.shutdown(socket.SHUT_WR)
            except OSError: pass
            log(conn, d, 'EOF'); return
        dst.sendall(data); buf += data
        if need_preface:
            if len(buf) < 24: continue
            buf = buf[24:]; need_preface = False
        while len(buf) >= 9:
            ln = int.from_bytes(buf[:3], 'big'); ft = buf[3]; fl = buf[4]; sid = struct.unpack('>I', buf[5:9])[0] & 0x7fffffff
            if len(buf) < 9 + ln: break
            p = buf[9:9+ln]; buf = buf[9+ln:]
            name = FT.get(ft, str(ft))
            if ft == 1:
                q = p
                if fl & 0x8: pad = q[0]; q = q[1:len(q)-pad]
                if fl & 0x20: q = q[5:]
                try: hs = dec.decode(q)
                except Exception as e: hs = [('decode-error', str(e))]
                log(conn, d, 'HEADERS s%d%s %s' % (sid, ' END_STREAM' if fl & 1 else '', ' '.join('%s=%s' % (k, v) for k, v in hs)))
            elif ft == 0:
                q = p
                if fl & 0x8: pad = q[0]; q = q[1:len(q)-pad]
                log(conn, d, 'DATA s%d len=%d%s %s' % (sid, len(q), ' END_STREAM' if fl & 1 else '', q[:48].hex()))
            elif ft in (3, 7):
                log(conn, d, '%s s%d %s' % (name, sid, p.hex()))
            elif ft == 4:
                if not (fl & 1):
                    log(conn, d, 'SETTINGS %s' % ' '.join('%d=%d' % struct.unpack('>HI', p[i:i+6]) for i in range(0, len(p), 6)))
            elif ft == 6:
                log(conn, d, 'PING%s' % (' ACK' if fl & 1 else ''))
            elif ft == 8:
                pass
            else:
                log(conn, d, '%s s%d len=%d' % (name, sid, ln))
def main():
    ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); ls.bind(('127.0.0.1', lp)); ls.listen(64)
    n = 0
    while True:
        c, _ = ls.accept(); n += 1
        s = socket.create_connection(('127.0.0.1', tp))
        log(n, '--', 'connect')
        threading.Thread(target=pump, args=(c, s, n, '>', True), daemon=True).start()
        threading.Thread(target=pump, args=(s, c, n, '<', False), daemon=True).start()
main()
