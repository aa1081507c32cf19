"""The moto DynamoDB server, made linearizable for the tests of chill-store-dynamo.

Usage: python3 moto_server.py -H 127.0.0.1 -p PORT   (the arguments of `python3 -m moto.server`)

With CHILL_MOTO_PARENT_PID set, the server exits when that process (the test binary that
started it) is gone.

Two changes to the stock server, both about how moto runs, not about what DynamoDB does:

1. One request at a time. The stock server is threaded and moto takes no lock: a
   conditional write checks its condition and writes in separate steps, so two racing
   claims of one slot can both succeed (measured: 4 of 30 rounds of 16 racing conditional
   transactions had more than one winner). DynamoDB itself makes each conditional write and
   each transaction atomic. A lock around every request restores that.
2. Cheap transaction rollback. moto snapshots every table a transaction touches with
   `copy.deepcopy` before each TransactWriteItems (and restores the snapshot when a
   condition fails), which takes time proportional to the table: about 0.3 s per
   transaction at 2,000 items. With requests serialized, a snapshot of just the items the
   transaction names gives the same rollback.
3. Queries without a sort of the whole table. moto answers every Query by reading
   `Table.all_items()`, which sorts every item of the table by key (with Python-level key
   comparisons) before the query keeps the few it wants and sorts those again itself. Inside a
   Query the items are handed over unsorted; the result and its order are the same.
"""

import copy
import os
import sys
import threading
import time

import moto.dynamodb.models as dynamodb_models
import moto.dynamodb.models.table as dynamodb_table
import moto.server
from moto.dynamodb.models.dynamo_type import DynamoType

_lock = threading.Lock()
_wrapped_app = moto.server.DomainDispatcherApplication


class _SerialApp:
    def __init__(self, *args, **kwargs):
        self._app = _wrapped_app(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._app, name)

    def __setattr__(self, name, value):
        if name == "_app":
            object.__setattr__(self, name, value)
        else:
            setattr(self._app, name, value)

    def __call__(self, environ, start_response):
        with _lock:
            # Read the whole body inside the lock so nothing of the request runs outside it.
            return list(self._app(environ, start_response))


class _NoTableCopy:
    """Stands in for the `copy` module inside transact_write_items: no whole-table copies."""

    @staticmethod
    def deepcopy(value, memo=None):
        return value


_original_transact = dynamodb_models.DynamoDBBackend.transact_write_items


def _key_of(table, op_type, op):
    if op_type == "Put":
        key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
        if table.range_key_attr is not None:
            key[table.range_key_attr] = op["Item"][table.range_key_attr]
        return key
    return op["Key"]


def _transact_write_items(self, transact_items):
    touched = []
    for entry in transact_items:
        for op_type, op in entry.items():
            table = self.get_table(op["TableName"])
            key = _key_of(table, op_type, op)
            hash_key = DynamoType(key[table.hash_key_attr])
            range_key = (
                DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
            )
            before = table.get_item(hash_key, range_key)
            touched.append((table, hash_key, range_key, copy.deepcopy(before)))
    dynamodb_models.copy = _NoTableCopy
    try:
        return _original_transact(self, transact_items)
    except BaseException:
        for table, hash_key, range_key, before in reversed(touched):
            if before is None:
                table.delete_item(hash_key, range_key)
            elif range_key is not None:
                table.items[hash_key][range_key] = before
            else:
                table.items[hash_key] = before
        raise
    finally:
        dynamodb_models.copy = copy


dynamodb_models.DynamoDBBackend.transact_write_items = _transact_write_items
moto.server.DomainDispatcherApplication = _SerialApp


_original_query = dynamodb_table.Table.query
_original_all_items = dynamodb_table.Table.all_items
# Set while a Query runs (requests are serialized, so one flag is enough).
_in_query = False


def _all_items(self):
    if not _in_query:
        return _original_all_items(self)
    if self.range_key_attr:
        return [item for hash_set in self.items.values() for item in hash_set.values()]
    return list(self.items.values())


def _query(self, *args, **kwargs):
    global _in_query
    _in_query = True
    try:
        return _original_query(self, *args, **kwargs)
    finally:
        _in_query = False


dynamodb_table.Table.all_items = _all_items
dynamodb_table.Table.query = _query



def _exit_with_parent(pid):
    while True:
        time.sleep(1)
        try:
            os.kill(pid, 0)
        except OSError:
            os._exit(0)
        if os.getppid() != pid:
            os._exit(0)


if __name__ == "__main__":
    parent = os.environ.get("CHILL_MOTO_PARENT_PID")
    if parent:
        threading.Thread(target=_exit_with_parent, args=(int(parent),), daemon=True).start()
    moto.server.main(sys.argv[1:])
