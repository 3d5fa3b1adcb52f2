"""smbprotocol from two connections: sharing modes and delete-pending on a server.

Usage: python sharing.py HOST PORT USER PASSWORD SHARE DIALECT NAME

Prints one `step: RESULT` line per step (`ok` or the NTSTATUS in hex) and exits 0:
  a-read-share-read      A opens NAME (created) for read, sharing read only
  b-write                B asks for write access (A does not share write)
  b-read-no-share        B asks for read, sharing nothing (A reads)
  b-read-share-rw        B asks for read, sharing read and write
  b-overwrite            B asks to overwrite it (write access)
  a-close, b-close
  a-open-delete          A opens it with DELETE access, sharing everything
  b-open                 B opens it, sharing everything
  a-set-delete           A marks it delete-pending (FileDispositionInformation)
  c-open                 a third connection opens it: delete pending
  a-close-2              A closes
  c-open-2               still pending while B has it open
  b-close-2              B closes: the file goes
  c-open-3               not found
"""

import sys
import uuid


def main(host, port, user, password, share, dialect, name):
    from smbprotocol.connection import Connection, Dialects
    from smbprotocol.exceptions import SMBResponseException
    from smbprotocol.file_info import FileDispositionInformation, FileInformationClass
    from smbprotocol.open import (CreateDisposition, CreateOptions, FileAttributes,
                                  FilePipePrinterAccessMask as A, ImpersonationLevel, Open,
                                  ShareAccess as S)
    from smbprotocol.session import Session
    from smbprotocol.tree import TreeConnect

    dialects = {"2.0.2": Dialects.SMB_2_0_2, "2.1": Dialects.SMB_2_1_0,
                "3.0": Dialects.SMB_3_0_0, "3.0.2": Dialects.SMB_3_0_2,
                "3.1.1": Dialects.SMB_3_1_1}

    def connect():
        conn = Connection(uuid.uuid4(), host, int(port), require_signing=True)
        conn.connect(dialects[dialect], timeout=30)
        session = Session(conn, user, password, require_encryption=False)
        session.connect()
        tree = TreeConnect(session, r"\\%s\%s" % (host, share))
        tree.connect()
        return tree

    def opener(tree, access, sharing, disposition=CreateDisposition.FILE_OPEN):
        f = Open(tree, name)
        f.create(ImpersonationLevel.Impersonation, access, FileAttributes.FILE_ATTRIBUTE_NORMAL,
                 sharing, disposition, CreateOptions.FILE_NON_DIRECTORY_FILE)
        return f

    handles = {}

    def step(label, fn):
        try:
            result = fn()
            if result is not None:
                handles[label] = result
            print("%s: ok" % label)
        except SMBResponseException as e:
            print("%s: %#010x" % (label, e.status))

    ta, tb, tc = connect(), connect(), connect()
    rd, wr = A.FILE_READ_DATA, A.FILE_WRITE_DATA
    all_share = S.FILE_SHARE_READ | S.FILE_SHARE_WRITE | S.FILE_SHARE_DELETE
    step("a-read-share-read", lambda: opener(ta, rd | wr, S.FILE_SHARE_READ,
                                              CreateDisposition.FILE_OVERWRITE_IF))
    handles["a-read-share-read"].close()
    step("a-read-share-read", lambda: opener(ta, rd, S.FILE_SHARE_READ))
    step("b-write", lambda: opener(tb, wr, all_share))
    step("b-read-no-share", lambda: opener(tb, rd, 0))
    step("b-read-share-rw", lambda: opener(tb, rd, S.FILE_SHARE_READ | S.FILE_SHARE_WRITE))
    step("b-overwrite", lambda: opener(tb, A.GENERIC_WRITE, all_share,
                                       CreateDisposition.FILE_OVERWRITE_IF))
    step("a-close", lambda: handles.pop("a-read-share-read").close())
    step("b-close", lambda: handles.pop("b-read-share-rw").close())

    step("a-open-delete", lambda: opener(ta, rd | A.DELETE, all_share))
    step("b-open", lambda: opener(tb, rd, all_share))

    def set_delete_raw():
        info = FileDispositionInformation()
        info["delete_pending"] = True
        from smbprotocol.file_info import InfoType
        from smbprotocol.open import SMB2SetInfoRequest
        req = SMB2SetInfoRequest()
        req["info_type"] = InfoType.SMB2_0_INFO_FILE
        req["file_info_class"] = FileInformationClass.FILE_DISPOSITION_INFORMATION
        req["file_id"] = handles["a-open-delete"].file_id
        req["buffer"] = info
        f = handles["a-open-delete"]
        request = f.connection.send(req, f.tree_connect.session.session_id,
                                    f.tree_connect.tree_connect_id)
        f.connection.receive(request)

    step("a-set-delete", set_delete_raw)
    step("c-open", lambda: opener(tc, rd, all_share))
    step("a-close-2", lambda: handles.pop("a-open-delete").close())
    step("c-open-2", lambda: opener(tc, rd, all_share))
    step("b-close-2", lambda: handles.pop("b-open").close())
    step("c-open-3", lambda: opener(tc, rd, all_share))


if __name__ == "__main__":
    main(*sys.argv[1:8])
