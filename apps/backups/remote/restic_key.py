"""A cheap key file for a site's restic repository (imported by backup_create.py).

Every restic process opens the repository by deriving a key from the
password with scrypt, using the parameters written in the repository's key
file. ``restic init`` calibrates them to cost about half a second of CPU (and
60 MiB) on the machine that made the repository: protection for a password a
person chose. The panel's repository passwords are 32 random bytes (256 bits
of entropy, docs/backups.md "Repository keys"): no guess can find one, with
or without a slow KDF, so those half seconds buy nothing, and a backup or a
restore starts restic several times.

So the node makes new repositories with a cheap key itself, and where restic's
calibrated key is found (right after ``restic init``, or in a repository made
before this change, at its next backup) it writes a second key file for the
same master key with cheap scrypt parameters (``CHEAP_KDF``), checks it, and
removes the calibrated one. The key file format (restic's design document,
"Keys, Encryption and MAC"): JSON with ``kdf`` ("scrypt"), ``N``, ``r``,
``p``, ``salt`` (64 bytes) and ``data``; scrypt(password, salt, N, r, p)
gives 64 bytes: 32 for AES-256-CTR, then 16 (k, AES-128) and 16 (r) for
Poly1305-AES; ``data`` is IV || AES-256-CTR(master key JSON) || Poly1305-AES
MAC of the ciphertext with the IV as nonce. The file is stored under
``keys/<sha256 of its bytes>``.

The calibrated key is read with the same code first: its MAC checking out
proves this implementation agrees with restic's. The new key is read back
before the old one goes, and restic itself must open the repository with it
afterwards, else the old key is put back. Everything here is best effort: any
failure leaves restic's own key in place (a slower, equally good repository).

The bucket is reached with S3's own protocol (Signature Version 4, path-style
addressing, as restic does for an endpoint that is not AWS's), with the
standard library only; AES comes from python3-cryptography (provisioned).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import os
import socket
import urllib.error
import urllib.parse
import urllib.request

# 2^10 * 8 * 128 bytes = 1 MiB, about a millisecond: plenty for a 256-bit random password.
CHEAP_KDF = {"N": 1024, "r": 8, "p": 1}
# Never derive with more than restic's own calibration ceiling allows (a hostile key file in the bucket).
MAX_SCRYPT_MEMORY = 512 * 1024 * 1024
# Nor with more work (128 * N * r * p bytes mixed; restic init calibrates to about 2^28 here, half a second):
# about 20 s of CPU at most, never the hours a forged p could ask for.
MAX_SCRYPT_WORK = 1 << 33
# A key file is a few hundred bytes; one from the bucket is never read further than this.
MAX_KEY_FILE_BYTES = 64 * 1024
KEY_NAME_LENGTH = 64
SALT_BYTES = 64
TIMEOUT = 30


class KeyError_(Exception):
    """The key could not be read, made or stored."""


# --- restic's authenticated encryption ------------------------------------------------------------

def _aes_ecb_block(key: bytes, block: bytes) -> bytes:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return encryptor.update(block) + encryptor.finalize()


def _aes_ctr(key: bytes, iv: bytes, data: bytes) -> bytes:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    cipher = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
    return cipher.update(data) + cipher.finalize()


def _poly1305_aes(k: bytes, r: bytes, nonce: bytes, message: bytes) -> bytes:
    """Poly1305-AES (Bernstein): r clamped, s = AES_k(nonce), tag = (poly_r(message) + s) mod 2^128."""
    r_value = int.from_bytes(r, "little") & 0x0FFFFFFC0FFFFFFC0FFFFFFC0FFFFFFF
    s_value = int.from_bytes(_aes_ecb_block(k, nonce), "little")
    prime = (1 << 130) - 5
    accumulator = 0
    for offset in range(0, len(message), 16):
        chunk = message[offset:offset + 16]
        accumulator = ((accumulator + int.from_bytes(chunk + b"\x01", "little")) * r_value) % prime
    return ((accumulator + s_value) & ((1 << 128) - 1)).to_bytes(16, "little")


def seal(keys: bytes, plaintext: bytes) -> bytes:
    """``keys``: 32 bytes AES-256 key, 16 bytes k, 16 bytes r."""
    iv = os.urandom(16)
    ciphertext = _aes_ctr(keys[:32], iv, plaintext)
    return iv + ciphertext + _poly1305_aes(keys[32:48], keys[48:64], iv, ciphertext)


def open_sealed(keys: bytes, sealed: bytes) -> bytes:
    if len(sealed) < 32:
        raise KeyError_("sealed data too short")
    iv, ciphertext, tag = sealed[:16], sealed[16:-16], sealed[-16:]
    if not hmac.compare_digest(_poly1305_aes(keys[32:48], keys[48:64], iv, ciphertext), tag):
        raise KeyError_("the MAC does not match (wrong password or damaged key)")
    return _aes_ctr(keys[:32], iv, ciphertext)


def kdf_parameters(key_file) -> tuple[int, int, int]:
    """N, r, p of a key file, checked before anything is derived with them (the file comes from the bucket)."""
    if not isinstance(key_file, dict) or key_file.get("kdf") != "scrypt":
        raise KeyError_("unexpected KDF (not scrypt)")
    values = [key_file.get(name) for name in ("N", "r", "p")]
    if not all(type(value) is int for value in values):
        raise KeyError_("unexpected KDF parameters")
    n, r, p = values
    if n < 2 or n & (n - 1) or r < 1 or p < 1 or 128 * r * n > MAX_SCRYPT_MEMORY or 128 * n * r * p > MAX_SCRYPT_WORK:
        raise KeyError_(f"unexpected KDF parameters (N={n} r={r} p={p})")
    return n, r, p


def is_cheap(key_file: dict) -> bool:
    """No scrypt parameter above CHEAP_KDF's."""
    return all(value <= CHEAP_KDF[name] for name, value in zip(("N", "r", "p"), kdf_parameters(key_file)))


def derive(password: str, key_file: dict) -> bytes:
    n, r, p = kdf_parameters(key_file)
    return hashlib.scrypt(password.encode(), salt=base64.b64decode(key_file["salt"]), n=n, r=r, p=p,
                          maxmem=2 * MAX_SCRYPT_MEMORY, dklen=64)


def master_key(password: str, key_file_bytes: bytes) -> bytes:
    """The master key JSON inside a key file (its MAC checked)."""
    key_file = json.loads(key_file_bytes)
    return open_sealed(derive(password, key_file), base64.b64decode(key_file["data"]))


def _name_from(key_file: dict, field: str) -> str:
    value = key_file.get(field)
    return value if isinstance(value, str) and len(value) <= 255 else ""


def cheap_key_file(password: str, master: bytes, like: dict) -> bytes:
    """A key file for ``master`` with CHEAP_KDF; host and user names copied from ``like``."""
    salt = os.urandom(SALT_BYTES)
    key_file = {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "username": _name_from(like, "username"),
        "hostname": _name_from(like, "hostname"),
        "kdf": "scrypt",
        **CHEAP_KDF,
        "salt": base64.b64encode(salt).decode(),
    }
    keys = derive(password, key_file)
    key_file["data"] = base64.b64encode(seal(keys, master)).decode()
    return json.dumps(key_file).encode()


# --- the bucket -----------------------------------------------------------------------------------

class Bucket:
    """The repository's objects, from restic's ``s3:<endpoint>/<bucket>/<prefix>`` and the keys."""

    def __init__(self, repository: dict):
        location = repository["url"]
        if not location.startswith("s3:"):
            raise KeyError_("not an S3 repository")
        location = location[3:]
        if "://" not in location:
            location = "https://" + location
        parts = urllib.parse.urlsplit(location)
        path = parts.path.strip("/").split("/", 1)
        if not parts.netloc or not path[0]:
            raise KeyError_("no bucket in the repository's location")
        self.base = f"{parts.scheme}://{parts.netloc}"
        self.host = parts.netloc
        self.bucket = path[0]
        self.prefix = path[1].strip("/") + "/" if len(path) > 1 and path[1].strip("/") else ""
        self.region = repository.get("region") or "us-east-1"
        self.access_key = repository["access_key_id"]
        self.secret_key = repository["secret_access_key"]

    def _request(self, method: str, key: str = "", body: bytes = b"", query: dict | None = None,
                 limit: int | None = None) -> bytes:
        now = datetime.datetime.now(datetime.timezone.utc)
        stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        path = "/" + urllib.parse.quote(self.bucket, safe="") + ("/" + urllib.parse.quote(key, safe="/~") if key else "")
        query_string = "&".join(f"{urllib.parse.quote(name, safe='~')}={urllib.parse.quote(value, safe='~')}"
                                for name, value in sorted((query or {}).items()))
        payload = hashlib.sha256(body).hexdigest()
        headers = {"host": self.host, "x-amz-content-sha256": payload, "x-amz-date": stamp}
        signed = ";".join(sorted(headers))
        canonical = "\n".join([method, path, query_string, *(f"{name}:{headers[name]}" for name in sorted(headers)),
                               "", signed, payload])
        scope = f"{day}/{self.region}/s3/aws4_request"
        to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
        signing = f"AWS4{self.secret_key}".encode()
        for part in (day, self.region, "s3", "aws4_request"):
            signing = hmac.new(signing, part.encode(), hashlib.sha256).digest()
        signature = hmac.new(signing, to_sign.encode(), hashlib.sha256).hexdigest()
        headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={self.access_key}/{scope}, "
                                    f"SignedHeaders={signed}, Signature={signature}")
        del headers["host"]
        # Else urllib says form data, and some servers read the body as a form.
        headers["content-type"] = "application/octet-stream"
        request = urllib.request.Request(self.base + path + ("?" + query_string if query_string else ""),
                                         data=body if method == "PUT" else None, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                if limit is None:
                    return response.read()
                data = response.read(limit + 1)
        except (urllib.error.URLError, socket.timeout, OSError) as exc:
            raise KeyError_(f"{method} {key or self.bucket}: {exc}") from None
        if len(data) > limit:
            raise KeyError_(f"{method} {key}: more than {limit} bytes")
        return data

    def create(self) -> None:
        """The bucket itself, in the repository's region."""
        body = b""
        if self.region != "us-east-1":
            body = ("<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                    f"<LocationConstraint>{self.region}</LocationConstraint></CreateBucketConfiguration>").encode()
        self._request("PUT", body=body)

    def exists(self, key: str) -> bool:
        try:
            self._request("HEAD", self.prefix + key)
            return True
        except KeyError_ as exc:
            if "404" in str(exc):
                return False
            raise

    def get(self, key: str, limit: int | None = None) -> bytes:
        return self._request("GET", self.prefix + key, limit=limit)

    def put(self, key: str, body: bytes) -> None:
        self._request("PUT", self.prefix + key, body)

    def delete(self, key: str) -> None:
        self._request("DELETE", self.prefix + key)

    def _names(self, prefix: str, start_after: str = "", stop: str = "") -> list[str]:
        """Object names under ``prefix`` (every page), after ``start_after`` and before ``stop`` when given."""
        import xml.etree.ElementTree as ElementTree

        def text(root, name):
            return [element.text or "" for element in root.iter() if element.tag.rpartition("}")[2] == name]

        names, token = [], None
        while True:
            query = {"list-type": "2", "prefix": prefix}
            if token:
                query["continuation-token"] = token
            elif start_after:
                query["start-after"] = start_after
            found = ElementTree.fromstring(self._request("GET", query=query))
            page = text(found, "Key")
            if start_after and not token and page and page[0] <= start_after:
                raise _StartAfterIgnored()
            names += page
            token = (text(found, "NextContinuationToken") or [None])[0]
            if stop and page and page[-1] >= stop:
                break
            if (text(found, "IsTruncated") or ["false"])[0] != "true" or not token:
                break
        return [name for name in names if not stop or name < stop]

    def list(self, folder: str) -> list[str]:
        """Names under ``folder/``."""
        return [name[len(self.prefix) + len(folder) + 1:] for name in self._names(f"{self.prefix}{folder}/")]

    def list_folders(self, folders: tuple[str, ...]) -> dict[str, list[str]]:
        """Names in each of ``folders`` with one listing where the server allows: S3 lists
        names in order, so the listing starts after the first folder's name and stops
        past the last one (restic's ``keys/``, ``locks/`` and ``snapshots/`` are small and
        adjacent; ``data/`` and ``index/`` come before them). A server that ignores
        ``start-after`` is asked once per folder instead."""
        first, last = min(folders), max(folders)
        try:
            names = self._names(self.prefix, start_after=f"{self.prefix}{first}/", stop=f"{self.prefix}{last}0")
        except _StartAfterIgnored:
            return {folder: self.list(folder) for folder in folders}
        found: dict[str, list[str]] = {folder: [] for folder in folders}
        for name in names:
            folder, _, rest = name[len(self.prefix):].partition("/")
            if folder in found and rest:
                found[folder].append(rest)
        return found


class _StartAfterIgnored(Exception):
    pass


# --- a new repository, made here ----------------------------------------------------------------

def _gf2_mod(value: int, modulus: int) -> int:
    degree = modulus.bit_length() - 1
    while value.bit_length() - 1 >= degree:
        value ^= modulus << (value.bit_length() - 1 - degree)
    return value


def _gf2_mulmod(a: int, b: int, modulus: int) -> int:
    product = 0
    while b:
        if b & 1:
            product ^= a
        a <<= 1
        b >>= 1
    return _gf2_mod(product, modulus)


def _gf2_gcd(a: int, b: int) -> int:
    while b:
        a, b = b, _gf2_mod(a, b)
    return a


def irreducible(polynomial: int) -> bool:
    """Ben-Or's test over GF(2): no factor of degree i <= deg/2, i.e.
    gcd(f, x^(2^i) - x mod f) == 1 for each such i."""
    degree = polynomial.bit_length() - 1
    power = 2  # x
    for _ in range(degree // 2):
        power = _gf2_mulmod(power, power, polynomial)  # x^(2^i) mod f
        if _gf2_gcd(polynomial, power ^ 2) != 1:
            return False
    return True


def chunker_polynomial() -> int:
    """A random irreducible polynomial of degree 53 over GF(2), as ``restic init`` picks one
    (the content-defined chunker's Rabin fingerprint)."""
    while True:
        candidate = (int.from_bytes(os.urandom(8), "little") & ((1 << 53) - 1)) | (1 << 53) | 1
        if irreducible(candidate):
            return candidate


def _mask_r(r: bytes) -> bytes:
    value = int.from_bytes(r, "little") & 0x0FFFFFFC0FFFFFFC0FFFFFFC0FFFFFFF
    return value.to_bytes(16, "little")


def new_repository_files(password: str, hostname: str) -> dict[str, bytes]:
    """``config`` and ``keys/<id>`` of a new, empty repository (format version 2): a
    random master key, sealed under a cheap key; the config sealed under the master key."""
    encrypt, k, r = os.urandom(32), os.urandom(16), _mask_r(os.urandom(16))
    master = json.dumps({"mac": {"k": base64.b64encode(k).decode(), "r": base64.b64encode(r).decode()},
                         "encrypt": base64.b64encode(encrypt).decode()}).encode()
    config = json.dumps({"version": 2, "id": os.urandom(32).hex(),
                         "chunker_polynomial": format(chunker_polynomial(), "x")}).encode()
    key_file = cheap_key_file(password, master, {"username": "root", "hostname": hostname})
    if master_key(password, key_file) != master:
        raise KeyError_("the new key does not read back")
    return {"config": seal(encrypt + k + r, config), f"keys/{hashlib.sha256(key_file).hexdigest()}": key_file}


def create_repository(repository: dict, opens_repository) -> str:
    """Make a new repository in the bucket (what ``restic init`` writes, without its
    scrypt calibration): only where nothing is stored yet (no config, no key), the
    bucket made first if it is missing. restic must open the result, or it is removed
    again. Returns what happened; raises KeyError_ with nothing left behind."""
    bucket = Bucket(repository)
    try:
        existing = bucket.list("keys")
    except KeyError_ as exc:
        if "404" not in str(exc):
            raise
        bucket.create()
        existing = []
    if existing or bucket.exists("config"):
        raise KeyError_("the location holds a repository already")
    files = new_repository_files(repository["password"], socket.gethostname())
    key_name = next(name for name in files if name.startswith("keys/"))
    try:
        bucket.put(key_name, files[key_name])
        bucket.put("config", files["config"])
        if bucket.get("config") != files["config"]:
            raise KeyError_("another run made the repository meanwhile")
    except KeyError_:
        _remove_ours(bucket, files, key_name)
        raise
    if opens_repository():
        return f"created the repository (key: scrypt N={CHEAP_KDF['N']} r={CHEAP_KDF['r']} p={CHEAP_KDF['p']})"
    _remove_ours(bucket, files, key_name)
    raise KeyError_("restic did not open the repository made here; it was removed again")


def _remove_ours(bucket: "Bucket", files: dict, key_name: str) -> None:
    """Our key, and the config only while it is still ours (never another run's)."""
    try:
        if bucket.get("config") == files["config"]:
            bucket.delete("config")
    except KeyError_:
        pass
    try:
        bucket.delete(key_name)
    except KeyError_:
        pass


# --- a calibrated key swapped for a cheap one -------------------------------------------------------

def read_key(bucket: Bucket, name: str) -> tuple[bytes, dict]:
    """The key file ``keys/<name>``, its bytes and its JSON, checked as far as
    can be without deriving anything: a sane name, a small file whose SHA-256 is
    its name, scrypt parameters within MAX_SCRYPT_MEMORY and MAX_SCRYPT_WORK."""
    if len(name) != KEY_NAME_LENGTH or name.strip("0123456789abcdef"):
        raise KeyError_("the repository's key file has an unexpected name")
    raw = bucket.get(f"keys/{name}", limit=MAX_KEY_FILE_BYTES)
    if hashlib.sha256(raw).hexdigest() != name:
        raise KeyError_("the repository's key file does not match its name")
    try:
        key_file = json.loads(raw)
    except ValueError:
        raise KeyError_("the repository's key file is no JSON") from None
    kdf_parameters(key_file)
    return raw, key_file


def calibrated_key(bucket: Bucket, names: list[str]) -> dict | None:
    """The repository's key file when it is its only one and its scrypt
    parameters are above CHEAP_KDF (restic's calibrated key), read from the
    bucket with nothing derived; None when there is nothing to swap (the key
    is cheap already, or the repository has several keys: someone's own, left
    alone). ``names``: the repository's ``keys/`` folder, listed already."""
    if len(names) != 1:
        return None
    _, key_file = read_key(bucket, names[0])
    return None if is_cheap(key_file) else key_file


def make_cheap(repository: dict, opens_repository) -> str:
    """Swap a repository's only key, restic's calibrated one, for a cheap one.
    ``opens_repository()`` runs restic against the repository and says whether
    it opened. Returns what happened, for the job log; raises KeyError_ with the
    calibrated key left in place."""
    bucket = Bucket(repository)
    names = bucket.list("keys")
    if len(names) != 1:
        raise KeyError_(f"expected the repository to have one key, found {len(names)}")
    old_name = names[0]
    old_bytes, old = read_key(bucket, old_name)
    if is_cheap(old):
        raise KeyError_("the repository's key is cheap already")
    master = master_key(repository["password"], old_bytes)
    new_bytes = cheap_key_file(repository["password"], master, old)
    if master_key(repository["password"], new_bytes) != master:
        raise KeyError_("the new key does not read back")
    new_name = hashlib.sha256(new_bytes).hexdigest()
    try:
        bucket.put(f"keys/{new_name}", new_bytes)
        bucket.delete(f"keys/{old_name}")
    except KeyError_:
        _put_back(bucket, old_name, old_bytes, new_name)
        raise
    if opens_repository():
        return f"repository key: scrypt N={CHEAP_KDF['N']} r={CHEAP_KDF['r']} p={CHEAP_KDF['p']} (was N={old['N']} " \
               f"r={old['r']} p={old['p']})"
    _put_back(bucket, old_name, old_bytes, new_name)
    raise KeyError_("restic did not open the repository with the new key; the calibrated key is back")


def _put_back(bucket: Bucket, old_name: str, old_bytes: bytes, new_name: str) -> None:
    """The calibrated key as it was, and the new one gone (a repository with both keys works too)."""
    bucket.put(f"keys/{old_name}", old_bytes)
    try:
        bucket.delete(f"keys/{new_name}")
    except KeyError_:
        pass
