"""Conformance with tuspy (tus-py-client 1.1.0, PyPI) against a running flare.

Usage: python3 tuspy_test.py BASE_URL TOKEN  (tests/clients/run.sh starts the server and
restarts it when asked). Each case uploads through presign's resumable URL and checks that the
bytes served at publicUrl hash equal to the source.
"""
import hashlib
import json
import os
import sys
import subprocess
import threading
import time
import urllib.request

from tusclient import client as tus_client

BASE, TOKEN = sys.argv[1], sys.argv[2]
RESTART = os.environ.get("FLARE_RESTART")  # a command that kill -9s the server and starts it again


def api(method, path, body=None):
    req = urllib.request.Request(BASE + path, method=method, data=json.dumps(body).encode() if body else None,
                                 headers={"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as res:
        return json.load(res)


def presign(**extra):
    video = api("POST", "/api/video/create", {"fileName": "rec.mp4"})["video"]
    return api("POST", "/api/video/upload/presign", {"videoId": video["id"], "fileName": "rec.mp4", "resumable": True, **extra})


def served(p):
    with urllib.request.urlopen(p["publicUrl"]) as res:
        return hashlib.sha256(res.read()).hexdigest()


def write(name, size):
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), name)
    data = os.urandom(size)
    with open(path, "wb") as f:
        f.write(data)
    return path, hashlib.sha256(data).hexdigest()


results = []


def case(fn):
    try:
        fn()
        results.append(("ok", fn.__name__))
        print("ok -", fn.__name__)
    except Exception as e:  # noqa: BLE001 - report every failure and go on
        results.append(("not ok", fn.__name__))
        print("not ok -", fn.__name__, repr(e))


def creation_with_sha1_checksums_in_1mib_chunks():
    p = presign()
    path, digest = write("tuspy-a.bin", 3 * 1024 * 1024 + 11)
    c = tus_client.TusClient(p["resumable"]["url"])
    c.uploader(file_path=path, chunk_size=1 << 20, upload_checksum=True).upload()
    assert served(p) == digest


def skipping_creation_with_a_known_url_and_a_signed_size():
    path, digest = write("tuspy-b.bin", 2 * 1024 * 1024)
    p = presign(size=os.path.getsize(path))
    c = tus_client.TusClient(p["resumable"]["url"])
    c.uploader(file_path=path, url=p["resumable"]["url"], chunk_size=512 * 1024).upload()
    assert served(p) == digest


def the_server_killed_mid_upload_and_restarted_the_upload_resumes():
    if not RESTART:
        raise RuntimeError("run through tests/clients/run.sh, which can restart the server")
    p = presign()
    path, digest = write("tuspy-c.bin", 8 * 1024 * 1024)
    c = tus_client.TusClient(p["resumable"]["url"])
    up = c.uploader(file_path=path, chunk_size=256 * 1024, retries=10, retry_delay=1)
    up.upload(stop_at=3 * 1024 * 1024)
    errors = []

    def rest():
        try:
            up.upload()
        except Exception as e:  # noqa: BLE001
            errors.append(e)
    t = threading.Thread(target=rest)
    t.start()
    time.sleep(0.05)  # mid-upload: kill -9, start again
    subprocess.run([RESTART], check=True)
    t.join()
    assert not errors, errors
    assert served(p) == digest


case(creation_with_sha1_checksums_in_1mib_chunks)
case(skipping_creation_with_a_known_url_and_a_signed_size)
case(the_server_killed_mid_upload_and_restarted_the_upload_resumes)
print(f"# pass {sum(r == 'ok' for r, _ in results)}")
print(f"# fail {sum(r != 'ok' for r, _ in results)}")
sys.exit(0 if all(r == "ok" for r, _ in results) else 1)
