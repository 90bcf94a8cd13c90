//! The one structure every `program.md` follows, and the check that it does.
//!
//! Seven numbered sections, `## N. Heading`. A heading matches when its number
//! is right and its words include the section's keywords (case-insensitive, so
//! `## 2. Setup` and `## 2. Set-up and data` both pass): task; set-up (or setup);
//! can + cannot; loop; levers; best + practices; output + format. Section 1 is
//! the user's: the templates leave [`TASK_PLACEHOLDER`] and [`TASK_PROMPT`]
//! there, and a program still holding either (or with nothing in Section 1) is
//! not finished.

pub const FILE: &str = "program.md";

/// Left in Section 1 by every template; `lab check` fails while it is there.
pub const TASK_PLACEHOLDER: &str = "<!-- lab: describe the task here, then delete this line -->";

/// The first words of the templates' instructions in Section 1, which count as
/// the placeholder too when only the marker line was deleted.
pub const TASK_PROMPT: &str = "Replace this paragraph before the first run";

/// Number, canonical heading, and keyword groups (each group: any one word of it).
pub const SECTIONS: [(u8, &str, &[&[&str]]); 7] = [
    (1, "Task", &[&["task"]]),
    (2, "Set-up", &[&["set-up", "setup"]]),
    (3, "What you CAN and CANNOT change", &[&["can"], &["cannot"]]),
    (4, "The loop", &[&["loop"]]),
    (5, "Levers worth pulling", &[&["levers"]]),
    (6, "Best practices", &[&["best"], &["practices"]]),
    (7, "Output format", &[&["output"], &["format"]]),
];

/// The number and lowercase words of a `## N. Heading` line.
fn heading(line: &str) -> Option<(u8, Vec<String>)> {
    let rest = line.strip_prefix("## ")?.trim_start();
    let (number, title) = rest.split_once('.')?;
    let number = number.trim().parse().ok()?;
    let words = title
        .split(|c: char| !(c.is_alphanumeric() || c == '-'))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    Some((number, words))
}

/// Everything wrong with the structure of a program, in section order.
pub fn problems(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let headings: Vec<(usize, u8, Vec<String>)> =
        lines.iter().enumerate().filter_map(|(i, l)| heading(l).map(|(n, w)| (i, n, w))).collect();
    let mut problems = Vec::new();
    let mut found = Vec::new();
    for (number, title, keywords) in SECTIONS {
        let at = headings.iter().find(|(_, n, words)| {
            *n == number && keywords.iter().all(|group| group.iter().any(|k| words.iter().any(|w| w == k)))
        });
        match at {
            Some((line, ..)) => found.push((number, *line)),
            None => problems.push(format!("{FILE}: section `## {number}. {title}` is missing")),
        }
    }
    if found.windows(2).any(|w| w[0].1 > w[1].1) {
        problems.push(format!("{FILE}: sections are out of order (1 to 7 expected)"));
    }
    if let Some(&(1, start)) = found.first() {
        let end = headings.iter().map(|(i, ..)| *i).find(|i| *i > start).unwrap_or(lines.len());
        let body = &lines[start + 1..end];
        if body.iter().any(|l| l.contains(TASK_PLACEHOLDER) || l.contains(TASK_PROMPT)) {
            problems.push(format!("{FILE}: Section 1 still holds the template's placeholder: describe the task"));
        } else if body.iter().all(|l| l.trim().is_empty()) {
            problems.push(format!("{FILE}: Section 1 (Task) is empty"));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn program(task: &str) -> String {
        let mut text = String::from("# leaf\n");
        for (n, title, _) in SECTIONS {
            text.push_str(&format!("\n## {n}. {title}\n\n{}\n", if n == 1 { task } else { "text" }));
        }
        text
    }

    #[test]
    fn a_complete_program_passes() {
        assert_eq!(problems(&program("Predict the thing.")), Vec::<String>::new());
        assert!(problems(&program("x").replace("Set-up", "Setup and data")).is_empty());
    }

    #[test]
    fn every_missing_section_and_the_placeholder_are_reported() {
        let text = program(TASK_PLACEHOLDER).replace("## 4. The loop", "## 4. Loop-de-loop").replace("Levers", "Knobs");
        let found = problems(&text);
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found[0].contains("## 4. The loop"));
        assert!(found[1].contains("## 5. Levers"));
        assert!(found[2].contains("placeholder"));
        assert!(problems(&program("")).iter().any(|p| p.contains("is empty")));
    }

    #[test]
    fn can_alone_is_not_can_and_cannot() {
        let text = program("x").replace("What you CAN and CANNOT change", "What you can change");
        assert_eq!(problems(&text).len(), 1);
    }

    #[test]
    fn order_matters() {
        let text = program("x")
            .replace("## 6. Best", "## 9. Best")
            .replace("## 2. Set-up", "## 6. Best practices\n\n## 2. Set-up");
        assert!(problems(&text).iter().any(|p| p.contains("out of order")), "{:?}", problems(&text));
    }
}
