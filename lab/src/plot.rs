//! The progress chart of a leaf (`lab plot`), drawn in Rust as SVG: x is the
//! experiments in order, y the metric; kept, discarded and crashed experiments
//! drawn apart; the running best of the harness's keeps as a step line; kept
//! experiments labelled with their hypothesis titles; the band around the
//! leader that the gate cannot tell from it, and the leader's held-out score
//! where the split was read. Pure: points in, SVG text out; the goal decides
//! which way "best" runs. Also the training curves of one experiment
//! ([`curves_svg`]), and either as PNG ([`png_of_svg`], resvg).
//!
//! Invariants: every point is drawn once (a crash, which has no value, sits on
//! the chart's floor as a cross), so the picture's marks count the experiments;
//! a chart with no value at all still draws its crashes on a unit axis.

use anyhow::{Result, anyhow};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::gate::Goal;

/// One finished experiment of the leaf, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub experiment: String,
    pub verdict: String,
    /// The metric, where the result carries it.
    pub value: Option<f64>,
    pub title: String,
    /// Kept by the harness (not typed by an agent): only these make the running best.
    pub harness: bool,
}

/// What is drawn over the points.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overlay {
    /// The leader's value less and plus the smallest gain the gate detects.
    pub band: Option<(f64, f64)>,
    /// The leader's held-out score where it was read: (index into the points, value).
    pub holdout: Vec<(usize, f64)>,
}

const SIZE: (u32, u32) = (960, 540);
const KEPT: RGBColor = RGBColor(0x1b, 0x9e, 0x4b);
const DISCARDED: RGBColor = RGBColor(0x99, 0x99, 0x99);
const CRASHED: RGBColor = RGBColor(0xd6, 0x27, 0x28);
const BEST: RGBColor = RGBColor(0x1f, 0x5f, 0xbf);
const HOLDOUT: RGBColor = RGBColor(0x8e, 0x44, 0xad);
/// The share of the y range above the highest value, where the legend sits.
const LEGEND_ROOM: f64 = 0.25;
/// Characters of a hypothesis title shown beside its kept point.
const LABEL: usize = 28;

/// The chart of `points` on `metric` (improving towards `goal`), as SVG text.
pub fn progress_svg(leaf: &str, metric: &str, goal: Goal, points: &[Point], overlay: &Overlay) -> Result<String> {
    let extra = overlay.band.into_iter().flat_map(|(a, b)| [a, b]).chain(overlay.holdout.iter().map(|h| h.1));
    let (low, high) = range(points.iter().filter_map(|p| p.value).chain(extra));
    // The top fifth is left to the legend, so it never hides a point.
    let high = high + (high - low) * LEGEND_ROOM;
    let n = points.len().max(1) as f64;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(draw)?;
        let caption = format!("{leaf}: {metric} ({goal}), {} experiments", points.len());
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, ("sans-serif", 20))
            .margin(16)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(0.5..n + 0.5, low..high)
            .map_err(draw)?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .x_labels(points.len().clamp(2, 20))
            .x_label_formatter(&|x| if x.fract() == 0.0 { format!("{x:.0}") } else { String::new() })
            .x_desc("experiment, in order")
            .y_desc(metric)
            .draw()
            .map_err(draw)?;
        let at = |i: usize| (i + 1) as f64;
        if let Some((lo, hi)) = overlay.band {
            chart
                .draw_series([Rectangle::new([(0.5, lo), (n + 0.5, hi)], BEST.mix(0.12).filled())])
                .map_err(draw)?
                .label("leader ± the smallest gain the gate detects")
                .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 16, y + 5)], BEST.mix(0.12).filled()));
        }
        if !overlay.holdout.is_empty() {
            let marks = overlay.holdout.iter().map(|&(i, v)| TriangleMarker::new((at(i), v), 7, HOLDOUT.filled()));
            chart
                .draw_series(marks)
                .map_err(draw)?
                .label("leader's held-out score, where read")
                .legend(|(x, y)| TriangleMarker::new((x + 8, y), 6, HOLDOUT.filled()));
        }
        chart
            .draw_series(
                running_best(goal, points).into_iter().map(|step| PathElement::new(step, BEST.stroke_width(2))),
            )
            .map_err(draw)?
            .label("running best (harness keeps)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BEST.stroke_width(2)));
        let marks = points.iter().enumerate().map(|(i, p)| match (p.verdict.as_str(), p.value) {
            ("keep", Some(v)) => Circle::new((at(i), v), 5, KEPT.filled()).into_dyn(),
            ("crash", _) | (_, None) => Cross::new((at(i), low), 5, CRASHED.stroke_width(2)).into_dyn(),
            (_, Some(v)) => Circle::new((at(i), v), 4, DISCARDED.stroke_width(1)).into_dyn(),
        });
        chart.draw_series(marks).map_err(draw)?;
        let labels = points.iter().enumerate().filter_map(|(i, p)| {
            let value = p.value.filter(|_| p.verdict == "keep")?;
            let title: String = p.title.chars().take(LABEL).collect();
            Some(Text::new(format!("{} {title}", p.experiment), (at(i), value), ("sans-serif", 12)))
        });
        chart.draw_series(labels).map_err(draw)?;
        legend(&mut chart)?;
        root.present().map_err(draw)?;
    }
    Ok(svg)
}

/// One line of a training curve: a tier's worker (`full train`) and its
/// (seconds, value) points of one metric.
pub type Line = (String, Vec<(f64, f64)>);

/// The most metrics drawn as panels of one experiment's curves.
pub const MAX_PANELS: usize = 6;

/// The training curves of `experiment`: one panel per metric (`curves`: the
/// metric and its lines, one per tier's worker), x in seconds since the
/// worker started. Smoke and full tiers are separate lines, never joined.
pub fn curves_svg(experiment: &str, curves: &[(String, Vec<Line>)]) -> Result<String> {
    let panels = curves.len().clamp(1, MAX_PANELS);
    let mut svg = String::new();
    {
        let height = 60 + 260 * u32::try_from(panels).unwrap_or(1);
        let root = SVGBackend::with_string(&mut svg, (SIZE.0, height)).into_drawing_area();
        root.fill(&WHITE).map_err(draw)?;
        let root = root.titled(&format!("{experiment}: what its code reported"), ("sans-serif", 20)).map_err(draw)?;
        for ((metric, lines), area) in curves.iter().zip(root.split_evenly((panels, 1))) {
            let xs = lines.iter().flat_map(|(_, p)| p.iter().map(|q| q.0));
            let t = xs.fold(0.0_f64, f64::max).max(1e-3);
            let (low, high) = range(lines.iter().flat_map(|(_, p)| p.iter().map(|q| q.1)));
            let high = high + (high - low) * LEGEND_ROOM;
            let mut chart = ChartBuilder::on(&area)
                .margin(12)
                .x_label_area_size(30)
                .y_label_area_size(64)
                .build_cartesian_2d(0.0..t, low..high)
                .map_err(draw)?;
            chart.configure_mesh().light_line_style(WHITE).x_desc("seconds").y_desc(metric).draw().map_err(draw)?;
            for (k, (label, points)) in lines.iter().enumerate() {
                let color = Palette99::pick(k).stroke_width(2);
                let finite = points.iter().copied().filter(|p| p.1.is_finite());
                chart
                    .draw_series(LineSeries::new(finite, color))
                    .map_err(draw)?
                    .label(label.clone())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
            }
            legend(&mut chart)?;
        }
        root.present().map_err(draw)?;
    }
    Ok(svg)
}

/// The y range: the values with a margin, a unit range around a single value,
/// and 0..1 when nothing has a value (crashes only).
fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let values: Vec<f64> = values.filter(|v| v.is_finite()).collect();
    let (min, max) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    if values.is_empty() {
        return (0.0, 1.0);
    }
    let pad = if max > min {
        (max - min) * 0.08
    } else if min != 0.0 {
        min.abs() * 0.05
    } else {
        0.05
    };
    (min - pad, max + pad)
}

/// The running best as horizontal then vertical segments: from each harness
/// keep that improved on the best so far to the next one, then to the end.
fn running_best(goal: Goal, points: &[Point]) -> Vec<Vec<(f64, f64)>> {
    let mut steps: Vec<(f64, f64)> = Vec::new();
    for (i, p) in points.iter().enumerate() {
        let Some(v) = p.value.filter(|_| p.verdict == "keep" && p.harness) else { continue };
        if steps.last().is_none_or(|&(_, best)| goal.better(v, best)) {
            steps.push(((i + 1) as f64, v));
        }
    }
    let end = points.len() as f64 + 0.5;
    let mut path = Vec::new();
    for (k, &(x, v)) in steps.iter().enumerate() {
        let next = steps.get(k + 1).map_or(end, |s| s.0);
        path.push((x, v));
        path.push((next, v));
    }
    if path.is_empty() { Vec::new() } else { vec![path] }
}

/// The PNG of a chart's SVG, rasterised by resvg at the SVG's size. Its text
/// needs a sans-serif font of the system (DejaVu or Liberation, as Debian
/// ships); without one the picture is drawn without its words.
pub fn png_of_svg(svg: &str) -> Result<Vec<u8>> {
    let mut options = resvg::usvg::Options::default();
    let fonts = options.fontdb_mut();
    fonts.load_system_fonts();
    let families: Vec<String> = fonts.faces().flat_map(|f| f.families.iter().map(|(name, _)| name.clone())).collect();
    if let Some(sans) = ["DejaVu Sans", "Liberation Sans"].into_iter().find(|f| families.iter().any(|n| n == f)) {
        fonts.set_sans_serif_family(sans);
    }
    let tree = resvg::usvg::Tree::from_str(svg, &options).map_err(|e| anyhow!("cannot read the chart's SVG: {e}"))?;
    let size = tree.size().to_int_size();
    let mut pixmap = resvg::tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or_else(|| anyhow!("the chart has no area to draw on"))?;
    resvg::render(&tree, resvg::tiny_skia::Transform::default(), &mut pixmap.as_mut());
    pixmap.encode_png().map_err(|e| anyhow!("cannot encode the chart as PNG: {e}"))
}

/// The series' legend in the upper right, where the y range leaves room for it.
fn legend<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
) -> Result<()> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(draw)
}

fn draw<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("cannot draw the chart: {e:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(verdict: &str, value: Option<f64>) -> Point {
        Point { experiment: "e".into(), verdict: verdict.into(), value, title: "t".into(), harness: true }
    }

    #[test]
    fn the_running_best_follows_the_goal_and_only_harness_keeps() {
        let mut typed = point("keep", Some(0.1));
        typed.harness = false;
        let points = [point("keep", Some(1.0)), point("discard", Some(0.5)), typed, point("keep", Some(0.8))];
        let best = running_best(Goal::Minimize, &points);
        assert_eq!(best, [vec![(1.0, 1.0), (4.0, 1.0), (4.0, 0.8), (4.5, 0.8)]]);
        assert_eq!(running_best(Goal::Maximize, &points), [vec![(1.0, 1.0), (4.5, 1.0)]], "0.8 is no gain");
        assert!(running_best(Goal::Minimize, &[point("crash", None)]).is_empty());
    }

    #[test]
    fn the_overlay_draws_the_band_and_each_held_out_read() {
        let points = [point("keep", Some(1.0)), point("keep", Some(0.8))];
        let overlay = Overlay { band: Some((0.7, 0.9)), holdout: vec![(1, 0.85), (1, 0.86)] };
        let svg = progress_svg("leaf", "loss", Goal::Minimize, &points, &overlay).unwrap();
        assert_eq!(svg.matches("<polygon").count(), 2 + 1, "two reads and the legend's marker: {svg}");
        let plain = progress_svg("leaf", "loss", Goal::Minimize, &points, &Overlay::default()).unwrap();
        assert_eq!(plain.matches("<polygon").count(), 0);
        assert!(svg.matches("<rect").count() > plain.matches("<rect").count(), "the band is drawn");
    }

    #[test]
    fn curves_draw_one_panel_per_metric_and_one_line_per_tier() {
        let line = |name: &str| (name.to_owned(), vec![(0.0, 2.0), (1.0, 1.5), (2.0, f64::NAN), (3.0, 1.0)]);
        let curves = vec![("loss".to_owned(), vec![line("smoke train"), line("full train")])];
        let svg = curves_svg("e3", &curves).unwrap();
        let drawn = svg.lines().filter(|l| l.starts_with("<polyline") && l.contains(r#"stroke-width="2""#)).count();
        assert_eq!(drawn, 2 * 2, "a line per tier and its legend mark (axes are thinner): {svg}");
        assert!(svg.contains("smoke train") && svg.contains("full train"), "{svg}");
        assert!(curves_svg("e3", &[]).unwrap().starts_with("<svg"), "no report is a valid picture");
    }

    #[test]
    fn a_png_is_the_svg_rasterised_at_its_size() {
        let svg =
            progress_svg("leaf", "loss", Goal::Minimize, &[point("keep", Some(1.0))], &Overlay::default()).unwrap();
        let png = png_of_svg(&svg).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let (width, height) =
            (u32::from_be_bytes(png[16..20].try_into().unwrap()), u32::from_be_bytes(png[20..24].try_into().unwrap()));
        assert_eq!((width, height), SIZE);
        assert!(png_of_svg("<svg").is_err(), "malformed SVG is an error, not a panic");
    }

    #[test]
    fn every_experiment_is_one_mark_even_without_values() {
        for points in [vec![point("keep", Some(2.0))], vec![point("crash", None), point("crash", None)]] {
            let svg = progress_svg("leaf", "loss", Goal::Minimize, &points, &Overlay::default()).unwrap();
            let circles = svg.matches("<circle").count();
            let crosses = points.iter().filter(|p| p.value.is_none()).count();
            assert_eq!(circles, points.len() - crosses, "{svg}");
            assert!(svg.starts_with("<svg"), "{svg}");
        }
        assert_eq!(range([2.0].into_iter()), (1.9, 2.1), "a single value gets a range");
    }
}
