"""smbprotocol 1.17 against an SMB server: one signed session, then file operations.

Usage: python smbprotocol_driver.py HOST PORT USER PASSWORD SHARE DIALECT [SIGNING_ALGORITHM]

DIALECT is 2.0.2, 2.1, 3.0, 3.0.2 or 3.1.1; SIGNING_ALGORITHM (3.1.1 only) is aes-gmac,
aes-cmac or hmac-sha256 and becomes the only entry of preferred_signing_algos.
Tree connect, create+write a file, read it back, list the share (the file stays for the
test to compare with what it expects). On success
prints one line `result: dialect=D signing=ALG signed=True` and exits 0; any failure raises
(the traceback is the test's failure reason).
"""

import sys
import uuid

from smbprotocol.connection import Connection, Dialects, SigningAlgorithms
from smbprotocol.open import (
    CreateDisposition,
    CreateOptions,
    DirectoryAccessMask,
    FileAttributes,
    FileInformationClass,
    FilePipePrinterAccessMask,
    ImpersonationLevel,
    Open,
    ShareAccess,
)
from smbprotocol.session import Session
from smbprotocol.tree import TreeConnect

DIALECTS = {
    "2.0.2": Dialects.SMB_2_0_2,
    "2.1": Dialects.SMB_2_1_0,
    "3.0": Dialects.SMB_3_0_0,
    "3.0.2": Dialects.SMB_3_0_2,
    "3.1.1": Dialects.SMB_3_1_1,
}
ALGORITHMS = {
    "hmac-sha256": SigningAlgorithms.HMAC_SHA256,
    "aes-cmac": SigningAlgorithms.AES_CMAC,
    "aes-gmac": SigningAlgorithms.AES_GMAC,
}
ALGORITHM_NAMES = {v: k for k, v in ALGORITHMS.items()}


def main():
    host, port, user, password, share, dialect = sys.argv[1:7]
    algorithm = sys.argv[7] if len(sys.argv) > 7 else None
    want = DIALECTS[dialect]
    payload = bytes((i * 7 + 3) % 256 for i in range(200_000))

    conn = Connection(uuid.uuid4(), host, int(port), require_signing=True)
    algos = [ALGORITHMS[algorithm]] if algorithm else None
    conn.connect(dialect=want, timeout=30, preferred_signing_algos=algos)
    try:
        assert conn.dialect == want, "negotiated %#x, asked for %#x" % (conn.dialect, want)
        # require_encryption=False: smbprotocol turns signing off when it encrypts.
        session = Session(conn, user, password, require_encryption=False, auth_protocol="ntlm")
        session.connect()
        assert session.signing_required, "session is not signed"
        assert session.signing_key is not None, "no signing key derived"
        assert not session.encrypt_data, "session is encrypted, not signed"
        if algorithm:
            got = conn.signing_algorithm_id
            assert got == ALGORITHMS[algorithm], "server chose signing algorithm %r" % got

        tree = TreeConnect(session, r"\\%s\%s" % (host, share))
        tree.connect()

        name = "smbprotocol-%s.bin" % dialect
        f = Open(tree, name)
        f.create(
            ImpersonationLevel.Impersonation,
            FilePipePrinterAccessMask.GENERIC_READ | FilePipePrinterAccessMask.GENERIC_WRITE
            | FilePipePrinterAccessMask.DELETE,
            FileAttributes.FILE_ATTRIBUTE_NORMAL,
            ShareAccess.FILE_SHARE_READ,
            CreateDisposition.FILE_OVERWRITE_IF,
            CreateOptions.FILE_NON_DIRECTORY_FILE,
        )
        # Several WRITEs and READs, each within the server's negotiated size.
        chunk = min(conn.max_write_size, conn.max_read_size, 65536)
        for off in range(0, len(payload), chunk):
            f.write(payload[off:off + chunk], off)
        back = b"".join(
            f.read(off, min(chunk, len(payload) - off)) for off in range(0, len(payload), chunk)
        )
        assert back == payload, "read back %d bytes that differ from the %d written" % (
            len(back), len(payload))
        f.close()

        d = Open(tree, "")
        d.create(
            ImpersonationLevel.Impersonation,
            DirectoryAccessMask.FILE_LIST_DIRECTORY,
            FileAttributes.FILE_ATTRIBUTE_DIRECTORY,
            ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE,
            CreateDisposition.FILE_OPEN,
            CreateOptions.FILE_DIRECTORY_FILE,
        )
        entries = d.query_directory("*", FileInformationClass.FILE_NAMES_INFORMATION)
        names = [e["file_name"].get_value().decode("utf-16-le") for e in entries]
        d.close()
        assert name in names, "%s not in the listing %r" % (name, names)

        tree.disconnect()
        session.disconnect()
        signing = ALGORITHM_NAMES.get(conn.signing_algorithm_id)
        if signing is None:
            signing = "hmac-sha256" if conn.dialect < Dialects.SMB_3_0_0 else "aes-cmac"
        print("result: dialect=%s signing=%s signed=%s" % (dialect, signing, session.signing_required))
    finally:
        conn.disconnect(True)


if __name__ == "__main__":
    main()
