#!/usr/bin/env python3
"""boto3 against a running ArtStore, with boto3's default settings (default checksums, CRC32 headers over http).

Run by tests/clients.rs (`boto3_*` tests); can also be run by hand:

    AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... AWS_DEFAULT_REGION=us-east-1 \
        python3 tests/py/boto3_client.py --endpoint http://127.0.0.1:9000 --bucket boto3-test --workdir /tmp/x

Every check is run even if an earlier one failed (when it does not depend on it); the script prints one
line per check and exits 1 if any check failed, 2 if it could not start.
"""

import argparse
import base64
import hashlib
import os
import random
import sys
import traceback
import urllib.error
import urllib.parse
import urllib.request
import zlib

try:
    import boto3
    import botocore
    from boto3.s3.transfer import TransferConfig
    from botocore.config import Config
    from botocore.exceptions import ClientError
except ImportError as e:  # pragma: no cover
    print(f"boto3 is not installed: {e}", file=sys.stderr)
    sys.exit(2)

MiB = 1024 * 1024

# Keys that break naive gateways: botocore always lists with encoding-type=url and decodes the answer.
AWKWARD_KEYS = [
    "plain.txt",
    "with space.txt",
    "a+b.txt",
    "100%.txt",
    "100%25 literal.txt",
    "dir/a+b 100%.txt",
    "dir/sub/deep file.bin",
    "dir//double-slash",
    "foo/bar",
    "foo/bar/baz",
    "unicode/Grüße – 文档.pdf",
    "q?x=1&y=2#frag",
    "tilde~and'quote\"",
    "semi;colon,comma=eq@at",
    "trailing-space ",
]


def crc32_b64(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def tamper_signature(url: str) -> str:
    """The URL with the last character of its signature changed (same length)."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    out = []
    for k, v in query:
        if k in ("X-Amz-Signature", "Signature"):
            v = v[:-2] + ("A" if v[-2] != "A" else "B") + v[-1] if k == "Signature" else \
                v[:-1] + ("0" if v[-1] != "0" else "1")
        out.append((k, v))
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(out)))


def prng_bytes(seed: int, n: int) -> bytes:
    return random.Random(seed).randbytes(n)


class Runner:
    def __init__(self):
        self.failures = []
        self.passed = 0

    def check(self, name, fn):
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - report everything
            self.failures.append(name)
            print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
            if isinstance(e, ClientError):
                print(f"     response: {e.response.get('Error')} "
                      f"HTTP {e.response.get('ResponseMetadata', {}).get('HTTPStatusCode')}", flush=True)
            else:
                traceback.print_exc(limit=3, file=sys.stdout)
            return False
        self.passed += 1
        print(f"ok   {name}", flush=True)
        return True


def expect(cond, msg):
    if not cond:
        raise AssertionError(msg)


def error_code(fn):
    try:
        fn()
    except ClientError as e:
        return e.response.get("Error", {}).get("Code"), e.response["ResponseMetadata"]["HTTPStatusCode"]
    return None, 200


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--bucket", required=True)
    ap.add_argument("--workdir", required=True)
    args = ap.parse_args()

    print(f"boto3 {boto3.__version__}, botocore {botocore.__version__}, endpoint {args.endpoint}", flush=True)
    session = boto3.session.Session()  # credentials and region from the environment
    # Default client: default checksum behaviour (when_supported), default signature, only fewer retries so a
    # failing server fails fast. Path style is what boto3 picks for an IP endpoint anyway.
    s3 = session.client("s3", endpoint_url=args.endpoint,
                        config=Config(retries={"max_attempts": 2, "mode": "standard"}))
    expect(s3.meta.config.request_checksum_calculation in (None, "when_supported"),
           f"not the default checksum mode: {s3.meta.config.request_checksum_calculation}")
    bucket = args.bucket
    r = Runner()
    os.makedirs(args.workdir, exist_ok=True)

    if not r.check("create_bucket", lambda: s3.create_bucket(Bucket=bucket)):
        print("cannot continue without a bucket")
        return 1

    small = b"hello artstore\n" * 100

    def put_default_checksum():
        resp = s3.put_object(Bucket=bucket, Key="small.txt", Body=small, ContentType="text/plain")
        expect(resp["ETag"] == '"%s"' % hashlib.md5(small).hexdigest(), f"ETag {resp['ETag']} is not the MD5")
        # botocore sent x-amz-checksum-crc32; if the server echoes it, it must be right.
        got = resp.get("ChecksumCRC32")
        if got is not None:
            expect(got == crc32_b64(small), f"ChecksumCRC32 {got} != {crc32_b64(small)}")
        print(f"     put_object ChecksumCRC32 in response: {got}")

    r.check("put_object with default CRC32 checksum", put_default_checksum)

    def get_checksum_mode():
        resp = s3.get_object(Bucket=bucket, Key="small.txt", ChecksumMode="ENABLED")
        body = resp["Body"].read()
        expect(body == small, "body differs")
        expect(resp["ContentLength"] == len(small), f"ContentLength {resp['ContentLength']}")
        expect(resp["ContentType"] == "text/plain", f"ContentType {resp['ContentType']}")
        got = resp.get("ChecksumCRC32")
        if got is not None:
            expect(got == crc32_b64(small), f"ChecksumCRC32 {got} != {crc32_b64(small)}")
        print(f"     get_object ChecksumCRC32 in response: {got}")

    r.check("get_object ChecksumMode=ENABLED", get_checksum_mode)

    def get_range():
        resp = s3.get_object(Bucket=bucket, Key="small.txt", Range="bytes=6-13", ChecksumMode="ENABLED")
        expect(resp["Body"].read() == small[6:14], "range body differs")
        expect(resp["ResponseMetadata"]["HTTPStatusCode"] == 206, "not 206")
        expect("ChecksumCRC32" not in resp, "a full-object checksum must not be returned for a range")

    r.check("get_object Range with ChecksumMode=ENABLED", get_range)

    def bad_checksum_rejected():
        c = session.client("s3", endpoint_url=args.endpoint, config=Config(retries={"max_attempts": 1}))
        code, status = error_code(lambda: c.put_object(Bucket=bucket, Key="small.txt", Body=b"other content",
                                                       ChecksumCRC32=crc32_b64(b"not the content")))
        expect(code in ("BadDigest", "InvalidDigest", "XAmzContentChecksumMismatch"),
               f"wrong CRC32 accepted or wrong error: {code} {status}")
        body = s3.get_object(Bucket=bucket, Key="small.txt")["Body"].read()
        expect(body == small, "existing object changed by a rejected PUT")
        code2, status2 = error_code(lambda: c.put_object(Bucket=bucket, Key="never-stored", Body=b"x",
                                                         ChecksumCRC32=crc32_b64(b"y")))
        expect(code2 in ("BadDigest", "InvalidDigest", "XAmzContentChecksumMismatch"), f"{code2} {status2}")
        code3, status3 = error_code(lambda: c.head_object(Bucket=bucket, Key="never-stored"))
        expect(status3 == 404, f"rejected object is visible: HEAD → {status3}")

    r.check("put_object with a wrong CRC32 → BadDigest, nothing stored", bad_checksum_rejected)

    meta = {"author": "Ann Example", "doc-id": "42", "department": "archive"}

    def head_metadata():
        s3.put_object(Bucket=bucket, Key="docs/with-meta.pdf", Body=b"%PDF-1.4 fake", Metadata=meta,
                      ContentType="application/pdf", ContentDisposition='attachment; filename="x.pdf"',
                      CacheControl="max-age=60")
        h = s3.head_object(Bucket=bucket, Key="docs/with-meta.pdf")
        expect(h["Metadata"] == meta, f"Metadata {h['Metadata']} != {meta}")
        expect(h["ContentType"] == "application/pdf", f"ContentType {h['ContentType']}")
        expect(h.get("ContentDisposition") == 'attachment; filename="x.pdf"',
               f"ContentDisposition {h.get('ContentDisposition')}")
        expect(h.get("CacheControl") == "max-age=60", f"CacheControl {h.get('CacheControl')}")
        expect(h["ContentLength"] == len(b"%PDF-1.4 fake"), f"ContentLength {h['ContentLength']}")
        g = s3.get_object(Bucket=bucket, Key="docs/with-meta.pdf")
        expect(g["Metadata"] == meta, f"GET Metadata {g['Metadata']}")

    r.check("head_object returns x-amz-meta-* and standard headers", head_metadata)

    big_path = os.path.join(args.workdir, "upload-20MiB.bin")
    big = prng_bytes(20250101, 20 * MiB)
    with open(big_path, "wb") as f:
        f.write(big)
    big_sha = hashlib.sha256(big).hexdigest()
    del big

    def upload_download():
        cfg = TransferConfig()  # defaults: multipart above 8 MiB, 8 MiB parts → 3 parts
        s3.upload_file(big_path, bucket, "big/20MiB.bin", Config=cfg, ExtraArgs={"Metadata": {"kind": "big"}})
        h = s3.head_object(Bucket=bucket, Key="big/20MiB.bin")
        expect(h["ContentLength"] == 20 * MiB, f"ContentLength {h['ContentLength']}")
        expect(h["ETag"].strip('"').endswith("-3"), f"multipart ETag expected '…-3', got {h['ETag']}")
        expect(h["Metadata"] == {"kind": "big"}, f"Metadata {h['Metadata']}")
        out = os.path.join(args.workdir, "download-20MiB.bin")
        s3.download_file(bucket, "big/20MiB.bin", out, Config=cfg)
        with open(out, "rb") as f:
            got = hashlib.sha256(f.read()).hexdigest()
        expect(got == big_sha, f"SHA-256 after download {got} != {big_sha}")
        os.remove(out)

    r.check("upload_file 20 MiB (multipart) + download_file, SHA-256 equal", upload_download)

    def composite_sha256():
        # COMPOSITE as AWS defines it, computed here independently: SHA-256 over the raw
        # part SHA-256s, base64, "-N".
        key = "big/composite.bin"
        parts_data = [prng_bytes(7, 5 * MiB), prng_bytes(8, 1234)]
        up = s3.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm="SHA256")
        uid = up["UploadId"]
        done = []
        for n, data in enumerate(parts_data, start=1):
            p = s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=n, Body=data,
                               ChecksumAlgorithm="SHA256")
            want = base64.b64encode(hashlib.sha256(data).digest()).decode()
            expect(p.get("ChecksumSHA256") == want, f"part {n} ChecksumSHA256 {p.get('ChecksumSHA256')}")
            done.append({"PartNumber": n, "ETag": p["ETag"], "ChecksumSHA256": want})
        out = s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=uid,
                                           MultipartUpload={"Parts": done})
        raw = b"".join(hashlib.sha256(d).digest() for d in parts_data)
        want = base64.b64encode(hashlib.sha256(raw).digest()).decode() + "-2"
        expect(out.get("ChecksumSHA256") == want, f"Complete ChecksumSHA256 {out.get('ChecksumSHA256')} != {want}")
        h = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        expect(h.get("ChecksumSHA256") == want, f"HEAD ChecksumSHA256 {h.get('ChecksumSHA256')}")
        expect(h.get("ChecksumType") == "COMPOSITE", f"HEAD ChecksumType {h.get('ChecksumType')}")
        a = s3.get_object_attributes(Bucket=bucket, Key=key,
                                     ObjectAttributes=["ETag", "Checksum", "ObjectParts", "ObjectSize"])
        expect(a["Checksum"].get("ChecksumSHA256") == want, f"attributes Checksum {a['Checksum']}")
        expect(a["ObjectSize"] == 5 * MiB + 1234, f"ObjectSize {a['ObjectSize']}")
        sizes = [p["Size"] for p in a["ObjectParts"]["Parts"]]
        expect(sizes == [5 * MiB, 1234], f"part sizes {sizes}")
        expect(a["ETag"].strip('"') == out["ETag"].strip('"'), f"ETag {a['ETag']} != {out['ETag']}")

    r.check("multipart COMPOSITE SHA-256 + GetObjectAttributes", composite_sha256)

    def awkward_listing():
        for k in AWKWARD_KEYS:
            s3.put_object(Bucket=bucket, Key="awk/" + k, Body=k.encode())
        pag = s3.get_paginator("list_objects_v2")
        keys, pages = [], 0
        for page in pag.paginate(Bucket=bucket, Prefix="awk/", PaginationConfig={"PageSize": 4}):
            pages += 1
            for o in page.get("Contents", []):
                keys.append(o["Key"])
                expect(o["ETag"].strip('"') == hashlib.md5(o["Key"][4:].encode()).hexdigest(),
                       f"listing ETag of {o['Key']!r}: {o.get('ETag')}")
                expect(o["Size"] == len(o["Key"][4:].encode()), f"listing Size of {o['Key']!r}: {o['Size']}")
        want = sorted("awk/" + k for k in AWKWARD_KEYS)
        expect(sorted(keys) == want, f"listed keys differ:\n got  {sorted(keys)}\n want {want}")
        expect(keys == sorted(keys, key=lambda s: s.encode()), "listing not in UTF-8 binary order")
        expect(pages >= 4, f"expected several pages of 4, got {pages}")
        # Delimiter listing: CommonPrefixes decoded correctly too.
        prefixes, direct = [], []
        for page in pag.paginate(Bucket=bucket, Prefix="awk/", Delimiter="/", PaginationConfig={"PageSize": 3}):
            prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
            direct += [o["Key"] for o in page.get("Contents", [])]
        want_prefixes = sorted({"awk/" + k.split("/")[0] + "/" for k in AWKWARD_KEYS if "/" in k})
        expect(sorted(prefixes) == want_prefixes, f"CommonPrefixes {sorted(prefixes)} != {want_prefixes}")
        want_direct = sorted("awk/" + k for k in AWKWARD_KEYS if "/" not in k)
        expect(sorted(direct) == want_direct, f"direct keys {sorted(direct)} != {want_direct}")
        # Each listed key can be read back by its name.
        for k in AWKWARD_KEYS:
            body = s3.get_object(Bucket=bucket, Key="awk/" + k)["Body"].read()
            expect(body == k.encode(), f"GET {k!r} returned other content")

    r.check("list_objects_v2 paginator over awkward keys", awkward_listing)

    def delete_objects():
        objs = [{"Key": "awk/" + k} for k in AWKWARD_KEYS]
        resp = s3.delete_objects(Bucket=bucket, Delete={"Objects": objs})
        deleted = sorted(d["Key"] for d in resp.get("Deleted", []))
        expect(not resp.get("Errors"), f"Errors: {resp.get('Errors')}")
        expect(deleted == sorted(o["Key"] for o in objs), f"Deleted {deleted}")
        left = s3.list_objects_v2(Bucket=bucket, Prefix="awk/")
        expect(left.get("KeyCount", 0) == 0 and not left.get("Contents"), f"left after delete: {left.get('Contents')}")
        # Quiet mode, and a key that does not exist counts as deleted.
        s3.put_object(Bucket=bucket, Key="q/1", Body=b"1")
        resp = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "q/1"}, {"Key": "q/missing"}],
                                                        "Quiet": True})
        expect(not resp.get("Deleted") and not resp.get("Errors"), f"quiet answer {resp}")
        code, status = error_code(lambda: s3.head_object(Bucket=bucket, Key="q/1"))
        expect(status == 404, f"q/1 still there: {status}")

    r.check("delete_objects (verbose and quiet)", delete_objects)

    def fetch(url):
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(url, timeout=30) as resp:
            return resp.status, resp.read()

    def presigned(client, label):
        key = "presigned/a b+c%.txt"
        s3.put_object(Bucket=bucket, Key=key, Body=b"presigned content")
        url = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=300)
        print(f"     {label} URL: {url}")
        status, body = fetch(url)
        expect(status == 200 and body == b"presigned content", f"{status} {body[:100]!r}")
        # A tampered signature must be refused.
        bad = tamper_signature(url)
        try:
            fetch(bad)
            raise AssertionError("tampered presigned URL was accepted")
        except urllib.error.HTTPError as e:
            expect(e.code == 403, f"tampered URL → HTTP {e.code}, want 403")

    r.check("generate_presigned_url (boto3 default signature) + urllib GET", lambda: presigned(s3, "default"))
    s3v4 = session.client("s3", endpoint_url=args.endpoint, config=Config(signature_version="s3v4"))
    r.check("generate_presigned_url (s3v4) + urllib GET", lambda: presigned(s3v4, "s3v4"))

    def cleanup():
        pag = s3.get_paginator("list_objects_v2")
        for page in pag.paginate(Bucket=bucket):
            objs = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if objs:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": objs, "Quiet": True})
        s3.delete_bucket(Bucket=bucket)
        code, status = error_code(lambda: s3.head_bucket(Bucket=bucket))
        expect(status == 404, f"bucket still there: {status}")

    r.check("empty and delete the bucket", cleanup)

    print(f"boto3 checks: {r.passed} ok, {len(r.failures)} failing", flush=True)
    if r.failures:
        print("failed checks: " + "; ".join(r.failures), flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
