"""Health probe of the orthancteam/orthanc stand-in, at upstream's path /probes/test-aliveness.py.

Written here after upstream's probe (orthanc-server/orthanc-builder, docker/orthanc/test-aliveness.py;
no upstream code): GET /changes?last on localhost (it reaches the database, /system may not); the
port, the scheme and the first registered user come from /tmp/orthanc.json unless given with
--http_port, --http_scheme, --user and --pwd. Exit 0 on HTTP 200, 1 otherwise. Upstream's client
certificate options (--certfile, --keyfile, --keypwd) are left out.
"""

import argparse
import base64
import json
import ssl
import sys
import urllib.request

parser = argparse.ArgumentParser()
parser.add_argument("--http_port", type=int)
parser.add_argument("--http_scheme")
parser.add_argument("--user")
parser.add_argument("--pwd")
args = parser.parse_args()

port, scheme, user, password = 8042, "http", None, None
try:
    with open("/tmp/orthanc.json", encoding="utf-8") as handle:
        config = json.load(handle)
except (OSError, ValueError):
    config = {}
port = config.get("HttpPort", port)
if config.get("SslEnabled"):
    scheme = "https"
users = config.get("RegisteredUsers") or {}
if config.get("AuthenticationEnabled") and users:
    if args.user:
        password = users.get(args.user)
    else:
        user, password = next(iter(users.items()))
port = args.http_port or port
scheme = args.http_scheme or scheme
user = args.user or user
password = args.pwd or password

request = urllib.request.Request(f"{scheme}://localhost:{port}/changes?last")  # noqa: S310 - http(s) only
if user and password:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE  # localhost, the server's own certificate
try:
    with urllib.request.urlopen(request, context=context, timeout=10) as response:  # noqa: S310
        sys.exit(0 if response.status == 200 else 1)
except Exception as exc:  # noqa: BLE001 - any failure is "not alive"
    print(f"not alive: {exc}", file=sys.stderr)
    sys.exit(1)
