//! `lab serve` end to end over real HTTP: the live page and its JSON, the
//! event stream that says when the research memory changed, the running
//! experiment's progress, and the refusals (no write method, loopback hosts
//! only).

mod common;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{lab_with, require_venv};

/// One HTTP/1.1 request; the status line and the body.
fn request(server: &common::Server, method: &str, path: &str, host: &str) -> (String, String) {
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(stream, "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (head.lines().next().unwrap_or_default().to_owned(), body.to_owned())
}

#[test]
fn the_dashboard_is_live_read_only_and_loopback_only() {
    require_venv();
    let lab = lab_with(&["ok", "slow"]);
    lab.ok(&["run", "ok", "--decide", "--no-smoke", "-q"]);
    let server = common::Server::start(&lab);
    let host = server.addr.clone();
    let (status, html) = request(&server, "GET", "/", &host);
    assert!(status.contains("200"), "{status}");
    assert!(html.contains(r#"data-experiments="1""#) && html.contains("EventSource"), "{html}");
    let (_, json) = request(&server, "GET", "/report.json", "localhost");
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["leaves"][0]["name"], "ok", "{json}");
    assert!(request(&server, "POST", "/", &host).0.contains("405"), "no write method");
    assert!(request(&server, "GET", "/", "evil.example:80").0.contains("403"), "a rebinding host is refused");

    // The event stream: progress while `slow` runs, then `changed` once its result is recorded.
    let mut events = TcpStream::connect(&server.addr).unwrap();
    events.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(events, "GET /events HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
    let mut events = BufReader::new(events);
    let mut command = lab.std_cmd_in(lab.root(), &["run", "slow", "--decide", "--no-smoke", "-q"]);
    let mut run = command.stderr(Stdio::null()).spawn().unwrap();
    let (mut progress, mut changed, started) = (false, false, Instant::now());
    let mut line = String::new();
    while !changed && started.elapsed() < Duration::from_secs(60) {
        line.clear();
        if events.read_line(&mut line).unwrap() == 0 {
            break;
        }
        progress |= line.starts_with("data: [{\"experiment\":\"e2\"");
        changed |= line.starts_with("event: changed") && progress;
    }
    run.wait().unwrap();
    assert!(progress, "the running experiment's progress was streamed");
    assert!(changed, "the stream said the research memory changed");
}
