"""impacket 0.13.1 against an SMB server: login, put, list, get.

Usage: python impacket_driver.py HOST PORT USER PASSWORD SHARE DIALECT

DIALECT is 2.0.2, 2.1, 3.0 or 3.1.1 (SMBConnection(preferredDialect=...)), or 3.0.2, which
SMBConnection does not accept: that one goes through smb3.SMB3(preferredDialect=
SMB2_DIALECT_302) wrapped in SMBConnection(existingConnection=...).
On success prints `result: dialect=0xNNN signing_required=True signing_active=True` and exits 0;
any failure raises (the traceback is the test's failure reason).
"""

import io
import sys

from impacket import smb3
from impacket.nmb import TYPE_SERVER
from impacket.smb3structs import (
    SMB2_DIALECT_002,
    SMB2_DIALECT_21,
    SMB2_DIALECT_30,
    SMB2_DIALECT_302,
    SMB2_DIALECT_311,
)
from impacket.smbconnection import SMBConnection

DIALECTS = {
    "2.0.2": SMB2_DIALECT_002,
    "2.1": SMB2_DIALECT_21,
    "3.0": SMB2_DIALECT_30,
    "3.0.2": SMB2_DIALECT_302,
    "3.1.1": SMB2_DIALECT_311,
}


def main():
    host, port, user, password, share, dialect = sys.argv[1:7]
    want = DIALECTS[dialect]
    if want == SMB2_DIALECT_302:
        raw = smb3.SMB3(host, host, None, TYPE_SERVER, int(port), 30, preferredDialect=want)
        conn = SMBConnection(existingConnection=raw)
    else:
        conn = SMBConnection(host, host, sess_port=int(port), timeout=30, preferredDialect=want)
    assert conn.getDialect() == want, "negotiated %#x, asked for %#x" % (conn.getDialect(), want)

    conn.login(user, password)
    session = conn.getSMBServer()._Session
    # impacket signs only when the server requires it (or on 3.1.1): both must hold here.
    assert conn.isSigningRequired(), "impacket did not see the server require signing"
    assert session["SigningActivated"], "signing is not active on the session"

    data = bytes((i * 13 + 5) % 251 for i in range(300_000))
    name = "impacket-%s.bin" % dialect
    conn.putFile(share, name, io.BytesIO(data).read)
    names = [f.get_longname() for f in conn.listPath(share, "*")]
    assert name in names, "%s not in the listing %r" % (name, names)
    back = io.BytesIO()
    conn.getFile(share, name, back.write)
    assert back.getvalue() == data, "read back %d bytes that differ from the %d written" % (
        len(back.getvalue()), len(data))
    print("result: dialect=%#x signing_required=%s signing_active=%s" % (
        conn.getDialect(), conn.isSigningRequired(), session["SigningActivated"]))
    conn.logoff()
    # Not conn.close(): it logs off a second time, and the server rightly answers that
    # LOGOFF with an unsigned STATUS_USER_SESSION_DELETED (there is no session to sign with).
    conn.getSMBServer().close_session()


if __name__ == "__main__":
    main()
