//! An incremental parser for Server-Sent Events (the change stream's wire
//! form), so every client reads the stream the same way.

/// One event: its `id`, `event` name and joined `data` lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
}

/// Feeds bytes in as they arrive; takes complete events out.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Decoded text not yet made into events, its line ends all `\n`.
    buffer: String,
    /// The start of a UTF-8 sequence cut short by the end of a read.
    pending: Vec<u8>,
    /// The text so far ended with a CR, so a LF right after it belongs to
    /// the same line end.
    after_cr: bool,
    /// How much of `buffer` is known to hold no blank line.
    scanned: usize,
}

impl SseParser {
    /// Adds received bytes and returns the events they complete. Comments
    /// (heartbeats) and events without data are skipped. Lines end with
    /// CR LF, LF or CR, as the standard says, wherever the reads cut them;
    /// bytes that are not UTF-8 read as U+FFFD and the stream goes on.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        self.pending.extend_from_slice(bytes);
        let mut text = String::new();
        let mut rest = &self.pending[..];
        loop {
            match std::str::from_utf8(rest) {
                Ok(valid) => {
                    text.push_str(valid);
                    rest = &[];
                    break;
                }
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    text.push_str(&String::from_utf8_lossy(valid));
                    match e.error_len() {
                        // Keep an incomplete sequence for the next read.
                        None => {
                            rest = after;
                            break;
                        }
                        Some(bad) => {
                            text.push(char::REPLACEMENT_CHARACTER);
                            rest = &after[bad..];
                        }
                    }
                }
            }
        }
        self.pending = rest.to_vec();
        if !text.is_empty() {
            let text = match self.after_cr {
                true => text.strip_prefix('\n').unwrap_or(&text),
                false => &text,
            };
            self.after_cr = text.ends_with('\r');
            self.buffer
                .push_str(&text.replace("\r\n", "\n").replace('\r', "\n"));
        }
        // Take every complete block, then drop them from the buffer at once;
        // `scanned` spares searching again what an earlier read searched.
        let mut events = Vec::new();
        let (mut from, mut at) = (0, self.scanned);
        while let Some(found) = self.buffer[at..].find("\n\n") {
            let end = at + found + 2;
            events.extend(event(&self.buffer[from..end]));
            (from, at) = (end, end);
        }
        self.buffer.drain(..from);
        // A blank line may begin with the last character so far.
        self.scanned = self.buffer.len() - usize::from(self.buffer.ends_with('\n'));
        events
    }
}

/// The event a block of lines (ending with a blank line) makes, if it has
/// data.
fn event(block: &str) -> Option<SseEvent> {
    let mut event = SseEvent::default();
    let mut has_data = false;
    for line in block.split_terminator('\n') {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => event.id = Some(value.to_owned()),
            "event" => event.event = Some(value.to_owned()),
            "data" => {
                if has_data {
                    event.data.push('\n');
                }
                event.data.push_str(value);
                has_data = true;
            }
            _ => {}
        }
    }
    has_data.then_some(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_events_split_anywhere() {
        let stream = "id: 1\ndata: {\"a\":1}\n\n: heartbeat\n\nevent: resync\ndata: x\ndata: y\n\nid: 2\r\ndata: é\r\n\r\n";
        let bytes = stream.as_bytes();
        for split in 0..bytes.len() {
            let mut p = SseParser::default();
            let mut events = p.push(&bytes[..split]);
            events.extend(p.push(&bytes[split..]));
            assert_eq!(events.len(), 3, "split at {split}");
            assert_eq!(events[0].id.as_deref(), Some("1"));
            assert_eq!(events[0].data, "{\"a\":1}");
            assert_eq!(events[1].event.as_deref(), Some("resync"));
            assert_eq!(events[1].data, "x\ny");
            assert_eq!(events[2].data, "é");
        }
    }

    /// Regressions (found by `tests/hostile_input.rs`): a lone CR did not
    /// end a line, so an `id` could hold the next lines (and a CR, which
    /// no header value may hold); one byte that is not UTF-8 stopped the
    /// stream for good, every later byte piling up behind it.
    /// A large event in small reads, and many events in one read, are each
    /// searched and moved once (both were quadratic).
    #[test]
    fn large_events_and_many_events_arrive_whole() {
        let mut p = SseParser::default();
        let data = "x".repeat(4 * 1024 * 1024);
        let stream = format!("data: {data}\n\n");
        let mut events = Vec::new();
        for piece in stream.as_bytes().chunks(4096) {
            events.extend(p.push(piece));
        }
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data, data);
        let many = "id: 1\ndata: y\n\n".repeat(100_000);
        let events = p.push(many.as_bytes());
        assert_eq!(events.len(), 100_000);
        assert!(events.iter().all(|e| e.data == "y"));
        assert!(p.buffer.is_empty());
    }

    #[test]
    fn every_line_end_ends_a_line_and_bad_bytes_do_not_stop_the_stream() {
        let stream = b"id: 1\rdata: a\r\rid: 2\r\ndata: \xff\xfeb\n\ndata: c\r\n\r\n";
        for split in 0..stream.len() {
            let mut p = SseParser::default();
            let mut events = p.push(&stream[..split]);
            events.extend(p.push(&stream[split..]));
            let got: Vec<(Option<&str>, &str)> = events
                .iter()
                .map(|e| (e.id.as_deref(), e.data.as_str()))
                .collect();
            assert_eq!(
                got,
                [
                    (Some("1"), "a"),
                    (Some("2"), "\u{fffd}\u{fffd}b"),
                    (None, "c")
                ],
                "split at {split}"
            );
        }
    }
}
