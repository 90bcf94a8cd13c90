//! The page the report and the dashboard share, rendered by minijinja from
//! `page.html` (embedded in the binary): one self-contained HTML document,
//! its CSS and SVG inline, nothing fetched from a network.
//!
//! Invariants: every value from the research memory is HTML-escaped (auto
//! escape is on for the template; titles and mechanisms are the agent's text),
//! except the charts, which are SVG this binary drew. The live page (`lab
//! serve`) differs only by a script that listens to the server's events.

use anyhow::{Context as _, Result};
use minijinja::{AutoEscape, Environment, UndefinedBehavior, context};

use super::LeafView;
use crate::output::format_number;
use crate::supervisor::progress::clock;

const PAGE: &str = include_str!("page.html");

/// The page over `leaves`. `live`: the dashboard's page, refreshed by the
/// server's events; otherwise a file to keep.
pub fn render(lab: &str, leaves: &[LeafView], live: bool) -> Result<String> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.add_filter("num", |x: f64| format_number(x));
    env.add_filter("clock", |s: f64| clock(std::time::Duration::from_secs_f64(s.max(0.0))));
    env.add_template("page.html", PAGE).context("the report's template does not parse")?;
    let page = env.get_template("page.html")?;
    let generated = jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M:%S UTC").to_string();
    let leaves = minijinja::Value::from(minijinja::value::Serde(leaves));
    Ok(page.render(context! { lab, leaves, live, generated })?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_renders_empty_and_escapes_the_lab_name() {
        let html = render("<b>lab</b>", &[], false).unwrap();
        assert!(html.starts_with("<!doctype html>"), "{html}");
        assert!(html.contains("&lt;b&gt;lab&lt;&#x2f;b&gt;") && !html.contains("<b>lab"), "{html}");
        assert!(!html.contains("EventSource"), "a report file listens to nothing");
        assert!(render("lab", &[], true).unwrap().contains("EventSource"), "the live page listens");
    }
}
