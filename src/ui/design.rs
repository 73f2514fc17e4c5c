//! The four questions the notes ask of any pipe — which way data flows,
//! whether both ways at once, whether the ends must be related, whether it
//! crosses machines — answered from what the pipe and FIFO panels observe:
//! the ends' open modes (fdinfo flags), the consumer's parent (/proc stat),
//! the object's kind (`pipe:[N]` on pipefs, a `p` node in a directory).
//! The answers are the model's (`design_answers`); an answer the snapshot
//! cannot back is left out, never assumed.

use ratatui::text::{Line, Span};

use super::{fit, View};
use crate::i18n::t;
use crate::model::detail::fifo::FifoDetail;
use crate::model::detail::pipe::PipeDetail;
use crate::model::detail::Answer;

fn key(a: Answer) -> &'static str {
    match a {
        Answer::OneWay => "design_one_way",
        Answer::HalfDuplex => "design_half_duplex",
        Answer::TwoPipes => "design_two_pipes",
        Answer::ParentChild => "design_parent_child",
        Answer::ByPath => "design_by_path",
        Answer::Local => "design_local",
    }
}

/// The ordinary pipe's answers, as locale keys in the notes' order.
pub fn pipe_answers(d: &PipeDetail) -> Vec<&'static str> {
    d.design_answers().into_iter().map(key).collect()
}

/// The FIFO's answers, as locale keys in the notes' order.
pub fn fifo_answers(d: &FifoDetail) -> Vec<&'static str> {
    d.design_answers().into_iter().map(key).collect()
}

/// The answers packed into at most `rows` rows of `room` columns, in
/// order; an answer that fits no row is left out whole.
pub fn rows(answers: &[&'static str], room: usize, rows: usize, view: &View) -> Vec<Line<'static>> {
    const SEP: &str = " · ";
    let mut out: Vec<Vec<&str>> = Vec::new();
    for key in answers {
        let text = t(view.lang, key);
        let w = fit::width(text);
        let n = out.len();
        match out.last_mut() {
            Some(row) if fit::width(&row.join(SEP)) + fit::width(SEP) + w <= room => row.push(text),
            _ if w <= room && n < rows => out.push(vec![text]),
            _ => {}
        }
    }
    let th = view.theme;
    out.into_iter().map(|row| Line::from(Span::styled(row.join(SEP), th.value()))).collect()
}
