//! The message queue's detail: what its panel shows beyond the common figures.

use serde::{Deserialize, Serialize};

/// What the message-queue panel shows beyond the common figures.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MqDetail {
    pub name: String,
    /// From mq_getattr on a borrowed copy of a worker's descriptor.
    pub attr_seen: bool,
    pub curmsgs: u64,
    pub maxmsg: u64,
    pub msgsize: u64,
    /// The machine's limits (/proc/sys/fs/mqueue).
    pub msg_max: u64,
    pub msgsize_max: u64,
    pub priorities: bool,
    /// Priorities of the last messages sent and received, oldest first.
    pub sent_prios: Vec<u32>,
    pub recv_prios: Vec<u32>,
    /// Messages received while an earlier one of the same or higher
    /// priority still waited: the kernel's order broken (should stay 0).
    pub inversions: u64,
    pub send_timeout_ms: u64,
    pub timeouts: u64,
    /// msg.size as asked and as sent (cut to mq_msgsize).
    pub msg_size_knob: u64,
    pub msg_size: u64,
    /// Messages the producer sent and the consumer received at each
    /// priority (index = priority), as the two workers count them. The
    /// kernel shows no queued message without receiving it, so this is
    /// where the queue's picture by priority comes from. Empty in
    /// recordings made before it was counted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sent_by_prio: Vec<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recv_by_prio: Vec<u64>,
}

impl MqDetail {
    /// Messages waiting at each priority, by the workers' counts: sent −
    /// received (index = priority). Empty when nothing was counted.
    pub fn queued_by_prio(&self) -> Vec<u64> {
        let n = self.sent_by_prio.len().max(self.recv_by_prio.len());
        let at = |v: &[u64], i: usize| v.get(i).copied().unwrap_or(0);
        (0..n).map(|i| at(&self.sent_by_prio, i).saturating_sub(at(&self.recv_by_prio, i))).collect()
    }

    /// The waiting messages' priorities in the order the kernel hands them
    /// out: the highest priority first, first in first out within one.
    /// `None` when the workers' counts are missing (an old recording).
    pub fn delivery_order(&self) -> Option<Vec<u32>> {
        let q = self.queued_by_prio();
        if q.is_empty() {
            return None;
        }
        Some((0..q.len()).rev().flat_map(|p| std::iter::repeat_n(p as u32, q[p] as usize)).collect())
    }

    /// The counts' sum against the kernel's `curmsgs`: `Some(true)` when
    /// they agree, `Some(false)` when a call sat between the kernel and its
    /// counter at the sampling instant, `None` with nothing to compare.
    pub fn counts_agree(&self) -> Option<bool> {
        let q = self.queued_by_prio();
        (!q.is_empty() && self.attr_seen).then(|| q.iter().sum::<u64>() == self.curmsgs)
    }
}

#[cfg(test)]
mod tests {
    use super::MqDetail;

    #[test]
    fn the_queue_by_priority_is_sent_minus_received_highest_first() {
        let d = MqDetail {
            attr_seen: true,
            curmsgs: 6,
            sent_by_prio: vec![5, 3, 2, 4],
            recv_by_prio: vec![3, 2, 2, 1],
            ..MqDetail::default()
        };
        assert_eq!(d.queued_by_prio(), [2, 1, 0, 3]);
        assert_eq!(d.delivery_order().unwrap(), [3, 3, 3, 1, 0, 0]);
        assert_eq!(d.counts_agree(), Some(true));
        // A message received and counted before its sender counted it:
        // never a negative count.
        let early = MqDetail { sent_by_prio: vec![0], recv_by_prio: vec![1], ..MqDetail::default() };
        assert_eq!(early.queued_by_prio(), [0]);
        assert_eq!(MqDetail::default().delivery_order(), None);
        assert_eq!(MqDetail::default().counts_agree(), None);
    }
}
