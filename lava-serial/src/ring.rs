//! A port's output ring: the last bytes of the board's output stream, bounded in bytes, shared by
//! every client of the port, plus the notices inserted into that stream. It is at once the
//! scrollback a client may ask to replay and the slack a slow client may fall behind by: each
//! client reads it at its own offset, so one copy of the output serves every client, and a client
//! that falls further behind than the ring holds loses exactly the bytes that left it.
//!
//! Memory is the ring's capacity (allocated once, touched only as output arrives) and nothing per
//! read: a burst costs the same as a trickle.

use std::collections::VecDeque;

use bytes::Bytes;

/// Bytes a client may fall behind the board by before it loses its oldest ones: ~91 s of output
/// at 115200 baud (11 520 bytes/s), ~11 s at 921600.
pub const LAG_BYTES: usize = 1 << 20;
/// Notices kept for clients that have not taken them yet; one further behind than this many
/// notices misses the oldest (it has lost output too, and is told so).
pub const NOTICES: usize = 256;

/// Who a notice is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    All,
    AllBut(u64),
    Only(u64),
}

impl Target {
    /// Whether client `id` should show it.
    pub fn includes(self, id: u64) -> bool {
        match self {
            Target::All => true,
            Target::AllBut(x) => x != id,
            Target::Only(x) => x == id,
        }
    }
}

/// A notice line placed in the stream before the board byte at offset `at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub at: u64,
    pub text: Bytes,
    pub to: Target,
}

/// The output ring.
#[derive(Debug)]
pub struct Ring {
    buf: VecDeque<u8>,
    cap: usize,
    /// Stream offset of `buf[0]`.
    start: u64,
    notices: VecDeque<Notice>,
    /// Sequence number of `notices[0]`.
    first_notice: u64,
}

/// What a reader takes next from the ring, given where it is.
#[derive(Debug, PartialEq, Eq)]
pub enum Next<'a> {
    /// Bytes from its offset on: two slices (the ring may wrap), at most the limit asked.
    Data(&'a [u8], &'a [u8]),
    /// It fell behind: this many bytes left the ring before it read them. Its offset moves on.
    Lost(u64),
    /// A notice (for anyone: the reader checks `to`).
    Notice(&'a Notice),
    /// Nothing new.
    Idle,
}

/// Where one reader is: its next board byte and its next notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub offset: u64,
    pub notice: u64,
}

impl Ring {
    /// A ring holding the last `cap` bytes (at least 1). The memory is reserved now and used as
    /// output arrives.
    pub fn new(cap: usize) -> Ring {
        let cap = cap.max(1);
        Ring {
            buf: VecDeque::with_capacity(cap),
            cap,
            start: 0,
            notices: VecDeque::new(),
            first_notice: 0,
        }
    }

    /// Offset just past the newest byte: the board's output so far.
    pub fn end(&self) -> u64 {
        self.start + self.buf.len() as u64
    }

    /// Offset of the oldest byte still held.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Where a reader starting now begins: at the next byte and the next notice.
    pub fn cursor(&self) -> Cursor {
        Cursor {
            offset: self.end(),
            notice: self.first_notice + self.notices.len() as u64,
        }
    }

    /// Appends board output, dropping the oldest bytes beyond the capacity.
    pub fn push(&mut self, data: &[u8]) {
        let data = if data.len() > self.cap {
            let cut = data.len() - self.cap;
            self.start += (self.buf.len() + cut) as u64;
            self.buf.clear();
            &data[cut..]
        } else {
            data
        };
        let excess = (self.buf.len() + data.len()).saturating_sub(self.cap);
        self.buf.drain(..excess);
        self.start += excess as u64;
        self.buf.extend(data);
    }

    /// Inserts a notice at the current end of the stream.
    pub fn notice(&mut self, text: Bytes, to: Target) {
        if self.notices.len() == NOTICES {
            self.notices.pop_front();
            self.first_notice += 1;
        }
        self.notices.push_back(Notice {
            at: self.end(),
            text,
            to,
        });
    }

    /// The bytes in `[from, to)`, as two slices; whatever part of it has left the ring (or not
    /// arrived yet) is cut off.
    pub fn range(&self, from: u64, to: u64) -> (&[u8], &[u8]) {
        let from = from.clamp(self.start, self.end());
        let to = to.clamp(from, self.end());
        let i = (from - self.start) as usize;
        let j = (to - self.start) as usize;
        let (a, b) = self.buf.as_slices();
        if j <= a.len() {
            (&a[i..j], &[])
        } else if i >= a.len() {
            (&b[i - a.len()..j - a.len()], &[])
        } else {
            (&a[i..], &b[..j - a.len()])
        }
    }

    /// What the reader at `cur` takes next (at most `limit` bytes of data), and moves `cur` past
    /// it. Data and notices come in the order they were put in.
    pub fn next(&self, cur: &mut Cursor, limit: usize) -> Next<'_> {
        if cur.notice < self.first_notice {
            cur.notice = self.first_notice;
        }
        let notice = self.notices.get((cur.notice - self.first_notice) as usize);
        let data_end = notice.map_or(self.end(), |n| n.at.max(cur.offset));
        if cur.offset < self.start && cur.offset < data_end {
            let lost = self.start - cur.offset;
            cur.offset = self.start;
            return Next::Lost(lost);
        }
        if cur.offset < data_end {
            let to = data_end.min(cur.offset + limit as u64);
            let (a, b) = self.range(cur.offset, to);
            cur.offset = to;
            return Next::Data(a, b);
        }
        match notice {
            Some(n) => {
                cur.notice += 1;
                Next::Notice(n)
            }
            None => Next::Idle,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: Next<'_>) -> Vec<u8> {
        match n {
            Next::Data(a, b) => [a, b].concat(),
            other => panic!("expected data, got {other:?}"),
        }
    }

    #[test]
    fn keeps_the_last_bytes_and_counts_what_a_reader_lost() {
        let mut r = Ring::new(8);
        let mut c = r.cursor();
        r.push(b"abcdef");
        assert_eq!(data(r.next(&mut c, 100)), b"abcdef");
        assert_eq!(r.next(&mut c, 100), Next::Idle);
        r.push(b"ghijklmnop"); // 10 bytes into a ring of 8: wraps, drops "abcdefgh"
        assert_eq!(r.start(), 8);
        assert_eq!(r.end(), 16);
        assert_eq!(r.next(&mut c, 100), Next::Lost(2));
        assert_eq!(data(r.next(&mut c, 3)), b"ijk");
        assert_eq!(data(r.next(&mut c, 100)), b"lmnop");
        // Bigger than the ring in one push.
        r.push(b"0123456789ABCDEFGHIJ");
        assert_eq!(r.next(&mut c, 100), Next::Lost(12));
        assert_eq!(data(r.next(&mut c, 100)), b"CDEFGHIJ");
        assert_eq!(r.end(), 36);
    }

    #[test]
    fn notices_sit_at_their_place_in_the_stream() {
        let mut r = Ring::new(64);
        let mut early = r.cursor();
        r.push(b"before ");
        r.notice(Bytes::from_static(b"[N1]"), Target::All);
        let mut late = r.cursor();
        r.push(b"after");
        r.notice(Bytes::from_static(b"[N2]"), Target::Only(7));
        let mut out = Vec::new();
        loop {
            match r.next(&mut early, 100) {
                Next::Data(a, b) => {
                    out.extend_from_slice(a);
                    out.extend_from_slice(b);
                }
                Next::Notice(n) => out.extend_from_slice(&n.text),
                Next::Lost(_) => panic!("nothing lost"),
                Next::Idle => break,
            }
        }
        assert_eq!(out, b"before [N1]after[N2]");
        // A reader that came after the first notice sees only what followed.
        assert_eq!(data(r.next(&mut late, 100)), b"after");
        match r.next(&mut late, 100) {
            Next::Notice(n) => {
                assert!(n.to.includes(7) && !n.to.includes(8));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(r.next(&mut late, 100), Next::Idle);
    }

    #[test]
    fn range_cuts_to_what_is_held() {
        let mut r = Ring::new(4);
        r.push(b"abcdef");
        assert_eq!(r.range(0, 100), (&b"cdef"[..], &b""[..]));
        r.push(b"gh");
        let (a, b) = r.range(5, 8);
        assert_eq!([a, b].concat(), b"fgh");
    }

    #[test]
    fn old_notices_give_way() {
        let mut r = Ring::new(4);
        let mut c = r.cursor();
        for i in 0..NOTICES + 3 {
            r.notice(Bytes::from(format!("{i}")), Target::All);
        }
        match r.next(&mut c, 1) {
            Next::Notice(n) => assert_eq!(&n.text[..], b"3"),
            other => panic!("{other:?}"),
        }
    }
}
