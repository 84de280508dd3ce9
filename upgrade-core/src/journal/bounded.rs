//! Every string the journal, history, logs or metrics keep comes from
//! somewhere else (an error, an archive entry's name, an API answer): it is
//! cut to [`MAX_TEXT`] bytes and its control characters are escaped, so no
//! input can make the state large or unreadable.

use super::{ComponentRecord, HistoryRecord, RunRecord, StepEvent};

/// The longest text kept in one journal or history field.
pub const MAX_TEXT: usize = 2048;

/// `text` with control characters (other than newline and tab) shown as
/// `\u{..}`, cut to [`MAX_TEXT`] bytes on a character boundary.
pub fn bounded(text: &str) -> String {
    crate::names::shorten(text, MAX_TEXT)
}

fn bound_in_place(text: &mut String) {
    if text.len() > MAX_TEXT
        || text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        *text = bounded(text);
    }
}

impl ComponentRecord {
    /// Bounds every free-text field (errors, reasons, health details).
    pub fn bound_texts(&mut self) {
        for t in self
            .last_error
            .iter_mut()
            .chain(self.skip_reason.iter_mut())
        {
            bound_in_place(t);
        }
        if let Some(h) = &mut self.health {
            h.detail.truncate(32);
            h.detail.iter_mut().for_each(bound_in_place);
        }
        for e in &mut self.journal {
            match &mut e.event {
                StepEvent::Failed { error } => bound_in_place(error),
                StepEvent::Done { result } => bound_in_place(result),
                StepEvent::Began => {}
            }
        }
    }
}

impl RunRecord {
    /// Bounds every free-text field of every component.
    pub fn bound_texts(&mut self) {
        self.components
            .values_mut()
            .for_each(ComponentRecord::bound_texts);
    }
}

impl HistoryRecord {
    /// The record with its free-text fields bounded.
    #[must_use]
    pub fn bounded(mut self) -> HistoryRecord {
        match &mut self {
            HistoryRecord::Run { summary, .. } => bound_in_place(summary),
            HistoryRecord::Component { error, .. } => error.iter_mut().for_each(bound_in_place),
            HistoryRecord::NotificationFailed { error, .. } => bound_in_place(error),
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_and_control_text_is_bounded_and_escaped() {
        let long = "x".repeat(1 << 20);
        let b = bounded(&long);
        assert!(b.len() <= MAX_TEXT + 4, "{}", b.len());
        assert_eq!(bounded("a\u{1b}[31mb\nc"), "a\\u{1b}[31mb\nc");
        let multibyte = "é".repeat(MAX_TEXT);
        assert!(bounded(&multibyte).len() <= MAX_TEXT + 4);
    }
}
