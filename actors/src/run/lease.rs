//! Leasing queued tasks to worker slots, as plain data.
//!
//! At most `max_workers` attempts at once; at most each declared worker's
//! `max_concurrent_tasks`; only to workers with every capability the task
//! requires; lowest `metadata.priority` first, then spec order. Without
//! declared workers, local slots `local-1..N` (N = max workers) take every
//! task. Queued tasks are grouped by their capability set, so choosing the
//! next lease costs O(groups × workers), not O(queue).

use std::collections::{BTreeMap, BTreeSet};

use crate::spec::RunSpec;

/// A worker slot an attempt runs in.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Slot {
    /// Declared worker (index into the spec's `workers`).
    Declared(usize),
    /// `local-N`.
    Local(u32),
}

#[derive(Clone, Debug)]
struct Worker {
    caps: Vec<String>,
    capacity: u32,
    busy: u32,
}

/// Worker capacity.
#[derive(Clone, Debug)]
pub struct Slots {
    max_total: u32,
    busy_total: u32,
    declared: Vec<Worker>,
    ids: Vec<String>,
    /// Local slot numbers in use (no declared workers).
    local_busy: BTreeSet<u32>,
}

impl Slots {
    pub fn new(spec: &RunSpec, max_workers: u32) -> Self {
        Self {
            max_total: max_workers.max(1),
            busy_total: 0,
            declared: spec
                .workers
                .iter()
                .map(|w| Worker {
                    caps: w.capabilities.clone(),
                    capacity: w.effective_concurrency(),
                    busy: 0,
                })
                .collect(),
            ids: spec.workers.iter().map(|w| w.id.clone()).collect(),
            local_busy: BTreeSet::new(),
        }
    }

    /// The slot's name (`local-3`, a worker id).
    pub fn name(&self, slot: &Slot) -> String {
        match slot {
            Slot::Declared(i) => self.ids.get(*i).cloned().unwrap_or_default(),
            Slot::Local(n) => format!("local-{n}"),
        }
    }

    /// The slot named `name`, if it is one of this run's.
    pub fn by_name(&self, name: &str) -> Option<Slot> {
        if let Some(i) = self.ids.iter().position(|id| id == name) {
            return Some(Slot::Declared(i));
        }
        if self.declared.is_empty() {
            let n: u32 = name.strip_prefix("local-")?.parse().ok()?;
            return (1..=self.max_total).contains(&n).then_some(Slot::Local(n));
        }
        None
    }

    pub fn is_full(&self) -> bool {
        self.busy_total >= self.max_total
    }

    pub fn busy(&self) -> u32 {
        self.busy_total
    }

    /// Whether some worker with free capacity has all of `caps`.
    fn can_take(&self, caps: &[String]) -> bool {
        if self.is_full() {
            return false;
        }
        if self.declared.is_empty() {
            return true;
        }
        self.declared
            .iter()
            .any(|w| w.busy < w.capacity && caps.iter().all(|c| w.caps.contains(c)))
    }

    /// Reserves a slot for a task needing `caps`: the least busy capable
    /// worker (then spec order), or the lowest free local slot.
    pub fn acquire(&mut self, caps: &[String]) -> Option<Slot> {
        if self.is_full() {
            return None;
        }
        let slot = if self.declared.is_empty() {
            let n = (1..=self.max_total).find(|n| !self.local_busy.contains(n))?;
            self.local_busy.insert(n);
            Slot::Local(n)
        } else {
            let (i, w) = self
                .declared
                .iter_mut()
                .enumerate()
                .filter(|(_, w)| w.busy < w.capacity && caps.iter().all(|c| w.caps.contains(c)))
                .min_by_key(|(i, w)| (w.busy, *i))?;
            w.busy += 1;
            Slot::Declared(i)
        };
        self.busy_total += 1;
        Some(slot)
    }

    /// Reserves a specific slot (when resuming an attempt that had one).
    pub fn acquire_exact(&mut self, slot: &Slot) -> bool {
        if self.is_full() {
            return false;
        }
        let ok = match slot {
            Slot::Local(n) => self.local_busy.insert(*n),
            Slot::Declared(i) => match self.declared.get_mut(*i) {
                Some(w) if w.busy < w.capacity => {
                    w.busy += 1;
                    true
                }
                _ => false,
            },
        };
        if ok {
            self.busy_total += 1;
        }
        ok
    }

    /// Frees a slot.
    pub fn release(&mut self, slot: &Slot) {
        let freed = match slot {
            Slot::Local(n) => self.local_busy.remove(n),
            Slot::Declared(i) => match self.declared.get_mut(*i) {
                Some(w) if w.busy > 0 => {
                    w.busy -= 1;
                    true
                }
                _ => false,
            },
        };
        if freed {
            self.busy_total = self.busy_total.saturating_sub(1);
        }
    }
}

/// The queue of tasks waiting for a slot.
#[derive(Clone, Debug, Default)]
pub struct Inbox {
    /// Capability set → (priority, spec order, task index).
    groups: BTreeMap<Vec<String>, BTreeSet<(i64, u32, usize)>>,
    len: usize,
}

impl Inbox {
    pub fn push(&mut self, task: usize, priority: i64, order: u32, caps: &[String]) {
        let mut key = caps.to_vec();
        key.sort();
        key.dedup();
        if self
            .groups
            .entry(key)
            .or_default()
            .insert((priority, order, task))
        {
            self.len += 1;
        }
    }

    /// Removes a task wherever it is.
    pub fn remove(&mut self, task: usize) -> bool {
        for set in self.groups.values_mut() {
            if let Some(k) = set.iter().find(|k| k.2 == task).copied() {
                set.remove(&k);
                self.len -= 1;
                return true;
            }
        }
        false
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every queued task index.
    pub fn tasks(&self) -> Vec<usize> {
        self.groups.values().flatten().map(|k| k.2).collect()
    }

    /// The next task a free slot can take, with its slot (both reserved /
    /// removed).
    pub fn next(&mut self, slots: &mut Slots) -> Option<(usize, Slot)> {
        let (caps, key) = self
            .groups
            .iter()
            .filter(|(caps, set)| !set.is_empty() && slots.can_take(caps))
            .filter_map(|(caps, set)| set.first().map(|k| (caps.clone(), *k)))
            .min_by_key(|(_, k)| (k.0, k.1))?;
        let slot = slots.acquire(&caps)?;
        if let Some(set) = self.groups.get_mut(&caps) {
            set.remove(&key);
        }
        self.len -= 1;
        Some((key.2, slot))
    }

    pub fn clear(&mut self) {
        self.groups.clear();
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::WorkerSpec;

    fn worker(id: &str, caps: &[&str], n: u32) -> WorkerSpec {
        WorkerSpec {
            id: id.into(),
            capabilities: caps.iter().map(|s| s.to_string()).collect(),
            max_concurrent_tasks: Some(n),
            ..Default::default()
        }
    }

    fn caps(c: &[&str]) -> Vec<String> {
        c.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn local_slots_by_priority_then_order() {
        let spec = RunSpec::default();
        let mut slots = Slots::new(&spec, 2);
        let mut inbox = Inbox::default();
        inbox.push(0, 0, 0, &[]);
        inbox.push(1, -5, 1, &[]);
        inbox.push(2, 0, 2, &caps(&["gpu"])); // local slots take every task
        inbox.push(3, 10, 3, &[]);
        let (t, s) = inbox.next(&mut slots).unwrap();
        assert_eq!((t, slots.name(&s)), (1, "local-1".to_string()));
        let (t, s2) = inbox.next(&mut slots).unwrap();
        assert_eq!((t, slots.name(&s2)), (0, "local-2".to_string()));
        assert!(inbox.next(&mut slots).is_none(), "max_workers reached");
        slots.release(&s);
        let (t, s3) = inbox.next(&mut slots).unwrap();
        assert_eq!((t, slots.name(&s3)), (2, "local-1".to_string()));
        assert_eq!(inbox.len(), 1);
    }

    #[test]
    fn declared_workers_capabilities_and_concurrency() {
        let spec = RunSpec {
            workers: vec![
                worker("linux", &["linux"], 1),
                worker("gpu", &["linux", "gpu"], 2),
            ],
            ..Default::default()
        };
        let mut slots = Slots::new(&spec, 10);
        let mut inbox = Inbox::default();
        inbox.push(0, 0, 0, &caps(&["gpu"]));
        inbox.push(1, 0, 1, &caps(&["gpu"]));
        inbox.push(2, 0, 2, &caps(&["gpu"]));
        inbox.push(3, 0, 3, &caps(&["linux"]));
        let mut got = Vec::new();
        while let Some((t, s)) = inbox.next(&mut slots) {
            got.push((t, slots.name(&s)));
        }
        // gpu takes two gpu tasks (its concurrency); task 2 waits; linux
        // takes task 3 (least busy capable worker).
        assert_eq!(
            got,
            [
                (0, "gpu".to_string()),
                (1, "gpu".to_string()),
                (3, "linux".to_string())
            ]
        );
        assert_eq!(inbox.tasks(), [2]);
        slots.release(&Slot::Declared(1));
        assert_eq!(inbox.next(&mut slots).map(|(t, _)| t), Some(2));
    }

    #[test]
    fn a_blocked_group_does_not_block_others() {
        let spec = RunSpec {
            workers: vec![worker("a", &["x"], 1)],
            ..Default::default()
        };
        let mut slots = Slots::new(&spec, 4);
        let mut inbox = Inbox::default();
        inbox.push(0, -1, 0, &caps(&["x"]));
        inbox.push(1, 0, 1, &caps(&["x"]));
        inbox.push(2, 5, 2, &[]);
        assert_eq!(inbox.next(&mut slots).map(|(t, _)| t), Some(0));
        // Worker `a` is busy: task 1 waits, task 2 (no caps) still runs on a.
        assert_eq!(inbox.next(&mut slots), None, "only worker is busy");
        assert!(inbox.remove(1));
        assert!(!inbox.remove(1));
        assert_eq!(inbox.len(), 1);
    }

    #[test]
    fn slot_names_round_trip() {
        let spec = RunSpec::default();
        let slots = Slots::new(&spec, 3);
        assert_eq!(slots.by_name("local-3"), Some(Slot::Local(3)));
        assert_eq!(slots.by_name("local-4"), None);
    }
}
