//! What the emulated NT kernel shows an observer: plain data, serde both
//! ways, so the monitor can sample it, record it and replay it.
//!
//! The shapes follow the textbook's picture (connection port, a channel of
//! two communication ports per client, sections, direct access, callbacks)
//! but every message sits where NT really keeps it: client→server messages
//! in the connection port's main queue, requests being served on its
//! pending queue, server→client messages on the client communication port,
//! and replies in no queue at all (handed to the waiting thread).

// The kernel fills the model's types: they are the one shape of this
// state, for the observer socket, the snapshot JSON and the panel alike.
pub use crate::model::detail::alpc::{
    AlpcState, CallbackView, ChannelView, CommunicationPortView, ConnectionPortView, ConnectionRequestView,
    DirectAccessView, DirectoryEntry, HandleView, MessageView, PathCounters, ProcessView, SectionMapping, SectionView,
    SectionViewRegion,
};
