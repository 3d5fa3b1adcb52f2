"""A real client sends one CREATE our server must refuse: unsigned, or signed with a wrong key,
on a session that requires signing (MS-SMB2 3.3.5.2.4: STATUS_ACCESS_DENIED, not executed).

Usage: python rejected_request.py LIBRARY HOST PORT USER PASSWORD SHARE DIALECT MODE NAME

LIBRARY is impacket or smbprotocol; DIALECT 2.0.2, 2.1, 3.0, 3.0.2 (smbprotocol only) or 3.1.1;
MODE is `unsigned` (the library's signing switched off after a signed TREE_CONNECT) or `bad-key`
(it signs with a key of 0x11 bytes); NAME is the file the CREATE asks to create.
Prints `result: refused STATUS_NAME (0xXXXXXXXX)`, `result: disconnected` (smbprotocol, when
the server's disconnect after a bad signature wins the race with its response) or
`result: accepted` and exits 0; any
other failure raises. The test checks that NAME does not exist on the share.
"""

import sys
import uuid

WRONG_KEY = b"\x11" * 16


def impacket(host, port, user, password, share, dialect, mode, name):
    from impacket.smbconnection import SMBConnection, SessionError

    revisions = {"2.0.2": 0x202, "2.1": 0x210, "3.0": 0x300, "3.1.1": 0x311}
    conn = SMBConnection(host, host, sess_port=port, timeout=30,
                         preferredDialect=revisions[dialect])
    conn.login(user, password)
    tid = conn.connectTree(share)  # signed: the session works until now
    session = conn.getSMBServer()._Session
    assert session["SigningActivated"], "signing is not active"
    if mode == "unsigned":
        session["SigningActivated"] = False
    elif dialect in ("2.0.2", "2.1"):
        session["SessionKey"] = WRONG_KEY  # impacket signs 2.x with the session key itself
    else:
        session["SigningKey"] = WRONG_KEY
    try:
        fid = conn.createFile(tid, name)
    except SessionError as e:
        code = e.getErrorCode()
        print("result: refused %s (%#010x)" % (e.getErrorString()[0], code))
        return
    conn.closeFile(tid, fid)
    print("result: accepted")


def smbprotocol(host, port, user, password, share, dialect, mode, name):
    from smbprotocol.connection import Connection, Dialects
    from smbprotocol.exceptions import SMBConnectionClosed, SMBResponseException
    from smbprotocol.header import NtStatus
    from smbprotocol.open import (CreateDisposition, CreateOptions, FileAttributes,
                                  FilePipePrinterAccessMask, ImpersonationLevel, Open,
                                  ShareAccess)
    from smbprotocol.session import Session
    from smbprotocol.tree import TreeConnect

    dialects = {"2.0.2": Dialects.SMB_2_0_2, "2.1": Dialects.SMB_2_1_0,
                "3.0": Dialects.SMB_3_0_0, "3.0.2": Dialects.SMB_3_0_2,
                "3.1.1": Dialects.SMB_3_1_1}
    conn = Connection(uuid.uuid4(), host, port, require_signing=True)
    conn.connect(dialect=dialects[dialect], timeout=30)
    try:
        session = Session(conn, user, password, require_encryption=False, auth_protocol="ntlm")
        session.connect()
        tree = TreeConnect(session, r"\\%s\%s" % (host, share))
        tree.connect()  # signed: the session works until now
        assert session.signing_required and session.signing_key, "signing is not active"
        if mode == "unsigned":
            session.signing_required = False
        else:
            session.signing_key = WRONG_KEY
        f = Open(tree, name)
        try:
            f.create(ImpersonationLevel.Impersonation,
                     FilePipePrinterAccessMask.GENERIC_WRITE,
                     FileAttributes.FILE_ATTRIBUTE_NORMAL, ShareAccess.FILE_SHARE_READ,
                     CreateDisposition.FILE_OVERWRITE_IF, CreateOptions.FILE_NON_DIRECTORY_FILE)
        except SMBResponseException as e:
            names = {v: k for k, v in vars(NtStatus).items() if k.startswith("STATUS_")}
            print("result: refused %s (%#010x)" % (names.get(e.status, "?"), e.status))
            return
        except SMBConnectionClosed:
            # After a bad signature the server fails the request and then disconnects
            # (MS-SMB2 3.3.5.2.4 allows it); smbprotocol's reader thread may see the close
            # before the waiting call picks up the response.
            print("result: disconnected")
            return
        print("result: accepted")
    finally:
        # Only the socket: a polite TREE_DISCONNECT/LOGOFF would go out unsigned or badly
        # signed as well, and be refused in turn.
        conn.disconnect(False)


def main():
    library, host, port, user, password, share, dialect, mode, name = sys.argv[1:10]
    assert mode in ("unsigned", "bad-key"), mode
    {"impacket": impacket, "smbprotocol": smbprotocol}[library](
        host, int(port), user, password, share, dialect, mode, name)


if __name__ == "__main__":
    main()
