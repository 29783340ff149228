//! The soak's resources over time as a picture (SVG, by `plotters`): the memory of the
//! node and of the largest agent and the store's size above, descriptors and threads
//! below, against minutes into the run.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::check::Sample;

/// One line of a chart: its name and its figure of a sample.
type Line = (&'static str, fn(&Sample) -> f64);

const MIB: f64 = 1024.0;

/// Draws `samples` into an SVG file at `path`.
pub fn plot(samples: &[Sample], path: &Path) -> Result<(), String> {
    let root = SVGBackend::new(path, (900, 640)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (top, bottom) = root.split_vertically(320);
    let memory: [Line; 3] = [
        ("service RSS (MiB)", |s| s.service.rss_kib as f64 / MIB),
        ("largest agent RSS (MiB)", |s| s.agent.rss_kib as f64 / MIB),
        ("store on disk (MiB)", |s| s.store_bytes as f64 / MIB / MIB),
    ];
    let handles: [Line; 3] = [
        ("service fds", |s| s.service.fds as f64),
        ("service threads", |s| s.service.threads as f64),
        ("largest agent fds", |s| s.agent.fds as f64),
    ];
    chart(&top, "memory and store", samples, &memory)?;
    chart(&bottom, "descriptors and threads", samples, &handles)?;
    root.present().map_err(|e| e.to_string())
}

fn minutes(sample: &Sample) -> f64 {
    sample.at.as_secs_f64() / 60.0
}

/// One chart of `lines` over the run, on `area`.
fn chart(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    title: &str,
    samples: &[Sample],
    lines: &[Line],
) -> Result<(), String> {
    let error = |e: &dyn std::fmt::Display| e.to_string();
    let end = samples.last().map_or(0.0, minutes).max(0.1);
    let highest = samples
        .iter()
        .flat_map(|s| lines.iter().map(move |(_, figure)| figure(s)))
        .fold(0.0, f64::max);
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(32)
        .y_label_area_size(48)
        .build_cartesian_2d(0.0..end, 0.0..(highest * 1.15).max(1.0))
        .map_err(|e| error(&e))?;
    chart
        .configure_mesh()
        .x_desc("minutes into the run")
        .draw()
        .map_err(|e| error(&e))?;
    let colors = [RED, BLUE, GREEN];
    for ((name, figure), color) in lines.iter().zip(colors) {
        let points = samples.iter().map(|s| (minutes(s), figure(s)));
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(|e| error(&e))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.85))
        .draw()
        .map_err(|e| error(&e))
}
