"""smbprotocol's change-notify API against a server, with a second connection making the
change, then a CANCEL.

Usage: python change_notify.py HOST PORT USER PASSWORD SHARE DIALECT NAME

Connection A (signing required) opens the share root and starts a FileSystemWatcher for
FILE_NAME changes; connection B creates NAME and closes it; A's watcher must return
`added NAME`. Then A starts a second watcher and cancels it (smbprotocol signs the CANCEL).
Prints `event: ACTION NAME` for each change and `cancelled: True|False`, exits 0; any other
failure raises.
"""

import sys
import threading
import uuid


def main(host, port, user, password, share, dialect, name):
    from smbprotocol.change_notify import CompletionFilter, FileSystemWatcher
    from smbprotocol.connection import Connection, Dialects
    from smbprotocol.open import (CreateDisposition, CreateOptions, DirectoryAccessMask,
                                  FileAttributes, FilePipePrinterAccessMask,
                                  ImpersonationLevel, Open, ShareAccess)
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
        return conn, session, tree

    conn_a, _, tree_a = connect()
    root = Open(tree_a, "")
    root.create(ImpersonationLevel.Impersonation,
                DirectoryAccessMask.FILE_LIST_DIRECTORY | DirectoryAccessMask.SYNCHRONIZE,
                FileAttributes.FILE_ATTRIBUTE_DIRECTORY,
                ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE
                | ShareAccess.FILE_SHARE_DELETE,
                CreateDisposition.FILE_OPEN, CreateOptions.FILE_DIRECTORY_FILE)

    watcher = FileSystemWatcher(root)
    watcher.start(CompletionFilter.FILE_NOTIFY_CHANGE_FILE_NAME)

    conn_b, _, tree_b = connect()
    f = Open(tree_b, name)
    f.create(ImpersonationLevel.Impersonation, FilePipePrinterAccessMask.GENERIC_ALL,
             FileAttributes.FILE_ATTRIBUTE_NORMAL, ShareAccess.FILE_SHARE_READ,
             CreateDisposition.FILE_OVERWRITE_IF, CreateOptions.FILE_NON_DIRECTORY_FILE)
    f.close()
    conn_b.disconnect()

    done = threading.Event()
    result = []

    def wait():
        result.append(watcher.wait())
        done.set()

    threading.Thread(target=wait, daemon=True).start()
    if not done.wait(30):
        raise RuntimeError("no change notification within 30 s")
    for info in result[0]:
        action = info["action"].get_value()
        print("event: %d %s" % (action, info["file_name"].get_value()))

    second = FileSystemWatcher(root)
    second.start(CompletionFilter.FILE_NOTIFY_CHANGE_FILE_NAME)
    second.cancel()
    second.wait()
    print("cancelled: %s" % second.cancelled)
    root.close()
    conn_a.disconnect()


if __name__ == "__main__":
    main(*sys.argv[1:8])
