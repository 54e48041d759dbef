//! Passkeys in the embedded store: the table `passkeys`, (user id,
//! credential id) → the record's JSON, so a user's passkeys are one range
//! of keys. They never expire.

use redb::{ReadTransaction, WriteTransaction};

use super::tables::{decode, encode, PASSKEYS};
use crate::store::records::PasskeyRecord;
use crate::store::StoreResult;

pub(super) fn put(txn: &WriteTransaction, record: &PasskeyRecord) -> StoreResult<()> {
    let json = encode(record)?;
    txn.open_table(PASSKEYS)?.insert(
        (record.user_id.as_str(), record.id.as_str()),
        json.as_slice(),
    )?;
    Ok(())
}

pub(super) fn list(txn: &ReadTransaction, user_id: &str) -> StoreResult<Vec<PasskeyRecord>> {
    let t = txn.open_table(PASSKEYS)?;
    let mut out = Vec::new();
    for entry in t.range((user_id, "")..)? {
        let (key, raw) = entry?;
        if key.value().0 != user_id {
            break;
        }
        out.push(decode::<PasskeyRecord>(raw.value())?);
    }
    out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    Ok(out)
}

pub(super) fn get(
    txn: &ReadTransaction,
    user_id: &str,
    id: &str,
) -> StoreResult<Option<PasskeyRecord>> {
    let t = txn.open_table(PASSKEYS)?;
    let raw = t.get((user_id, id))?;
    raw.map(|r| decode(r.value())).transpose()
}

pub(super) fn delete(txn: &WriteTransaction, user_id: &str, id: &str) -> StoreResult<bool> {
    Ok(txn.open_table(PASSKEYS)?.remove((user_id, id))?.is_some())
}
