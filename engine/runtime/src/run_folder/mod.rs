//! A run folder, its one definition: what it holds and where (`episodes.jsonl`,
//! `plan.jsonl`, `judgements.jsonl`, `transcripts/<episode_id>.jsonl`, the report
//! files), and how its append-only logs are read.

/// The lines of an append-only JSONL log that parse as `T`, the latest for each key, in
/// order of the key's first appearance. Lines that do not parse are skipped.
pub fn latest_lines<T: serde::de::DeserializeOwned, K: Ord>(text: &str, key: impl Fn(&T) -> K) -> Vec<T> {
    let mut order: Vec<T> = Vec::new();
    let mut at: std::collections::BTreeMap<K, usize> = std::collections::BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(item) = serde_json::from_str::<T>(line) else { continue };
        match at.entry(key(&item)) {
            std::collections::btree_map::Entry::Occupied(i) => order[*i.get()] = item,
            std::collections::btree_map::Entry::Vacant(slot) => {
                slot.insert(order.len());
                order.push(item);
            }
        }
    }
    order
}
