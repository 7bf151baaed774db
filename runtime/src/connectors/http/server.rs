//! The ingest server's side of one connection: read a request, decide, answer.
//!
//! Hand-written over `std::net` with `httparse` (already in the tree through ureq)
//! rather than tiny_http, which drains an unread body on drop into a buffer the size of
//! its `Content-Length` and starts a thread per connection: here a body above
//! `max_body` is refused before one byte of it is read, the threads are a fixed pool,
//! and every read and write has a timeout. One request per connection (`Connection:
//! close`): the answer to an accepted request comes only once its records are safe,
//! from another thread, so keeping the connection for a next request would gain little.

use super::body;
use std::io::{ErrorKind, Read, Write};
use std::ops::Range;

/// The most a request line and its headers may take.
const MAX_HEAD: usize = 16 * 1024;
const MAX_HEADERS: usize = 64;

/// What requests must look like.
#[derive(Debug, Clone)]
pub struct Rules {
    pub path: String,
    /// Empty: no token asked for.
    pub token: String,
    pub max_body: usize,
}

/// A request's records: its body, and where each record is in it. Reused: reading a
/// request into one that held an earlier request keeps its buffers.
#[derive(Debug, Default)]
pub struct Records {
    pub body: Vec<u8>,
    pub ranges: Vec<Range<usize>>,
}

/// An answer given at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub text: String,
}

impl Answer {
    pub fn new(status: u16, text: impl Into<String>) -> Answer {
        Answer {
            status,
            text: text.into(),
        }
    }
}

/// Reads one request into `into` (whatever it held is replaced; its buffers are
/// reused): its records, or the answer it gets now (`None`: the connection broke,
/// nobody to answer). `has_room` says whether the queue may take more: asked before the
/// body is read, so a full queue costs no reading.
pub fn read_request(
    stream: &mut (impl Read + Write),
    rules: &Rules,
    has_room: impl Fn() -> bool,
    into: &mut Records,
    check: body::Check,
) -> Result<(), Option<Answer>> {
    into.ranges.clear();
    // The head is read into the body's buffer, then moved out of the body's way.
    let head = &mut into.body;
    head.clear();
    head.resize(MAX_HEAD, 0);
    let mut filled = 0;
    let (head_len, content_length, expects_continue) = loop {
        let n = match stream.read(&mut head[filled..]) {
            Ok(0) => return Err(None),
            Ok(n) => n,
            Err(e) => return Err(timed_out(&e).then(|| Answer::new(408, "the request did not arrive in time"))),
        };
        filled += n;
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&head[..filled]) {
            Ok(httparse::Status::Complete(len)) => {
                let (length, expects) = check_head(&request, rules)?;
                break (len, length, expects);
            }
            Ok(httparse::Status::Partial) if filled < MAX_HEAD => {}
            Ok(httparse::Status::Partial) => return Err(Some(Answer::new(431, "the request's headers are too long"))),
            Err(e) => return Err(Some(Answer::new(400, format!("not an HTTP request: {e}")))),
        }
    };
    if !has_room() {
        return Err(Some(busy()));
    }
    if expects_continue && filled == head_len {
        let _ = stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
    }
    let already = (filled - head_len).min(content_length);
    let body = head;
    body.copy_within(head_len..head_len + already, 0);
    body.resize(content_length, 0);
    if let Err(e) = stream.read_exact(&mut body[already..]) {
        return Err(timed_out(&e).then(|| Answer::new(408, "the body did not arrive in time")));
    }
    body::records(body, &mut into.ranges, check).map_err(|reason| Some(Answer::new(400, reason)))
}

/// The answer of a full queue.
pub fn busy() -> Answer {
    Answer::new(503, "the pipeline is busy: try again")
}

fn timed_out(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock)
}

/// Method, path, token and length: `(content_length, expects 100-continue)`.
fn check_head(request: &httparse::Request<'_, '_>, rules: &Rules) -> Result<(usize, bool), Option<Answer>> {
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    };
    let path = request.path.unwrap_or_default();
    let path = path.split(['?', '#']).next().unwrap_or_default();
    if path != rules.path {
        return Err(Some(Answer::new(
            404,
            format!("nothing here: records go to {}", rules.path),
        )));
    }
    if request.method != Some("POST") {
        return Err(Some(Answer::new(405, "only POST is accepted")));
    }
    if !rules.token.is_empty() {
        let given = header("authorization").unwrap_or_default();
        let expected = format!("Bearer {}", rules.token);
        if !same(given, expected.as_bytes()) {
            return Err(Some(Answer::new(
                401,
                "a valid `Authorization: Bearer` token is needed",
            )));
        }
    }
    if header("transfer-encoding").is_some() {
        return Err(Some(Answer::new(411, "send the body with a Content-Length")));
    }
    let Some(length) = header("content-length") else {
        return Err(Some(Answer::new(411, "send the body with a Content-Length")));
    };
    let length: usize = std::str::from_utf8(length)
        .ok()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| Some(Answer::new(400, "a Content-Length that is not a number")))?;
    if length > rules.max_body {
        return Err(Some(Answer::new(
            413,
            format!("the body is larger than {} bytes", rules.max_body),
        )));
    }
    let expects = header("expect").is_some_and(|v| v.eq_ignore_ascii_case(b"100-continue"));
    Ok((length, expects))
}

/// Compares in time that does not depend on where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Writes `answer`, closing the exchange.
pub fn write_answer(stream: &mut impl Write, answer: &Answer) {
    let reason = match answer.status {
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "",
    };
    let extra = match answer.status {
        401 => "WWW-Authenticate: Bearer\r\n",
        405 => "Allow: POST\r\n",
        503 => "Retry-After: 1\r\n",
        _ => "",
    };
    let text = format!("{}\n", answer.text);
    let head = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n",
        answer.status,
        text.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(text.as_bytes());
    let _ = stream.flush();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A request's bytes to read, and what was written back.
    struct Fake {
        input: Cursor<Vec<u8>>,
        output: Vec<u8>,
    }

    impl Read for Fake {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.input.read(buf)
        }
    }

    impl Write for Fake {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.output.write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn rules() -> Rules {
        Rules {
            path: "/ingest".into(),
            token: "t0k".into(),
            max_body: 20,
        }
    }

    fn status(request: &str, room: bool) -> Result<(usize, Vec<u8>), u16> {
        let mut fake = Fake {
            input: Cursor::new(request.as_bytes().to_vec()),
            output: Vec::new(),
        };
        let mut records = Records::default();
        match read_request(&mut fake, &rules(), || room, &mut records, body::Check::Here) {
            Ok(()) => Ok((records.ranges.len(), fake.output)),
            Err(answer) => Err(answer.map_or(0, |a| a.status)),
        }
    }

    const AUTH: &str = "Authorization: Bearer t0k\r\n";

    #[test]
    fn requests_are_refused_for_the_right_reason_before_the_body_is_read() {
        let post = |path: &str, headers: &str, body: &str| {
            format!(
                "POST {path} HTTP/1.1\r\nHost: x\r\n{headers}Content-Length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        assert_eq!(
            status(&post("/ingest", AUTH, "{\"a\":1}\n{}"), true),
            Ok((2, Vec::new()))
        );
        assert_eq!(status(&post("/ingest?x=1", AUTH, "[]"), true), Ok((0, Vec::new())));
        assert_eq!(status(&post("/other", AUTH, "{}"), true), Err(404));
        assert_eq!(status(&format!("GET /ingest HTTP/1.1\r\n{AUTH}\r\n"), true), Err(405));
        assert_eq!(status(&post("/ingest", "", "{}"), true), Err(401));
        assert_eq!(
            status(&post("/ingest", "Authorization: Bearer t0x\r\n", "{}"), true),
            Err(401)
        );
        assert_eq!(status(&post("/ingest", AUTH, "nope"), true), Err(400));
        // Above max_body: refused on the length alone (the body here is not even sent).
        let big = format!("POST /ingest HTTP/1.1\r\n{AUTH}Content-Length: 21\r\n\r\n");
        assert_eq!(status(&big, true), Err(413));
        assert_eq!(status(&post("/ingest", AUTH, "{}"), false), Err(503));
        let chunked = format!("POST /ingest HTTP/1.1\r\n{AUTH}Transfer-Encoding: chunked\r\n\r\n");
        assert_eq!(status(&chunked, true), Err(411));
        // A body cut short is nobody's to answer.
        let short = format!("POST /ingest HTTP/1.1\r\n{AUTH}Content-Length: 10\r\n\r\n{{}}");
        assert_eq!(status(&short, true), Err(0));
        assert_eq!(status("\u{1}\u{2} nonsense\r\n\r\n", true), Err(400));
    }

    #[test]
    fn a_reused_buffer_holds_only_the_new_request() {
        let request = |body: &str| {
            Cursor::new(
                format!(
                    "POST /ingest HTTP/1.1\r\n{AUTH}Content-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .into_bytes(),
            )
        };
        let mut records = Records::default();
        let long = format!("{}\n{{\"b\":2}}", " ".repeat(20_000));
        let mut rules = rules();
        rules.max_body = 1 << 20;
        for body in [
            "{\"a\":1}\n[1]\n\"x\"",
            long.as_str(),
            "[3, {\"c\":4}]",
            "",
            "{\"d\":5}",
        ] {
            let mut fake = Fake {
                input: request(body),
                output: Vec::new(),
            };
            assert_eq!(
                read_request(&mut fake, &rules, || true, &mut records, body::Check::Here),
                Ok(())
            );
            assert_eq!(
                records.body,
                body.as_bytes(),
                "the body alone, nothing of the head or before"
            );
            let texts: Vec<_> = records.ranges.iter().map(|r| &body[r.clone()]).collect();
            let expected: Vec<&str> = match body {
                "" => vec![],
                b if b.starts_with('[') => vec!["3", "{\"c\":4}"],
                b if b.starts_with(' ') => vec!["{\"b\":2}"],
                b if b.starts_with("{\"a") => vec!["{\"a\":1}", "[1]", "\"x\""],
                _ => vec!["{\"d\":5}"],
            };
            assert_eq!(texts, expected);
        }
        // A refused request leaves no records behind.
        let mut fake = Fake {
            input: request("not json"),
            output: Vec::new(),
        };
        assert!(read_request(&mut fake, &rules, || true, &mut records, body::Check::Here).is_err());
        assert!(records.ranges.is_empty());
    }

    #[test]
    fn a_client_expecting_100_continue_is_told_to_go_on() {
        let request = format!("POST /ingest HTTP/1.1\r\n{AUTH}Expect: 100-continue\r\nContent-Length: 2\r\n\r\n");
        let mut fake = Fake {
            input: Cursor::new(format!("{request}{{}}").into_bytes()),
            output: Vec::new(),
        };
        // The body came with the head here: no 100 needed.
        assert!(read_request(&mut fake, &rules(), || true, &mut Records::default(), body::Check::Here).is_ok());
        assert!(fake.output.is_empty());
    }

    #[test]
    fn answers_close_the_connection_and_say_when_to_come_back() {
        let mut out = Vec::new();
        write_answer(&mut out, &busy());
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{text}");
        assert!(
            text.contains("Retry-After: 1\r\n") && text.contains("Connection: close\r\n"),
            "{text}"
        );
        assert!(text.ends_with("\r\n\r\nthe pipeline is busy: try again\n"), "{text}");
    }
}
