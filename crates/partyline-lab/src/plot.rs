//! Plots: wall time against the number of parties, one chart per scenario,
//! demo and size, one line per solution, as PNG and SVG.
//!
//! Text in the PNG needs a font file; the lab uses DejaVu Sans (Debian's
//! `fonts-dejavu-core`, installed by scripts/setup-test-deps.sh).
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::prelude::*;

use crate::error::{LabError, Result};
use crate::report::{Row, median_walls};

const FONT_FILES: [&str; 2] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];
const SIZE: (u32, u32) = (800, 500);
const COLORS: [RGBColor; 5] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
];

fn register_font() -> Result<()> {
    static FONT: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    FONT.get_or_init(|| {
        let bytes = FONT_FILES
            .iter()
            .find_map(|f| std::fs::read(f).ok())
            .ok_or_else(|| {
                format!(
                    "no font found ({}); install fonts-dejavu-core",
                    FONT_FILES[0]
                )
            })?;
        // plotters keeps fonts for the whole process.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
            .map_err(|_| "the font file is not a usable TrueType font".to_string())
    })
    .clone()
    .map_err(LabError::Plot)
}

/// Writes the charts into `dir`; returns the files written.
pub fn write_plots(rows: &[Row], dir: &Path) -> Result<Vec<PathBuf>> {
    register_font()?;
    std::fs::create_dir_all(dir).map_err(LabError::io(dir))?;
    let walls = median_walls(rows);
    let charts: BTreeSet<(String, String, String)> = rows
        .iter()
        .map(|r| (r.scenario.clone(), r.demo.clone(), r.size.clone()))
        .collect();
    let mut written = Vec::new();
    for (scenario, demo, size) in charts {
        let mut solutions: Vec<String> = Vec::new();
        for r in rows
            .iter()
            .filter(|r| r.scenario == scenario && r.demo == demo && r.size == size)
        {
            if !solutions.contains(&r.solution) {
                solutions.push(r.solution.clone());
            }
        }
        let series: Vec<(String, Vec<(usize, f64)>)> = solutions
            .into_iter()
            .map(|solution| {
                let points = walls
                    .iter()
                    .filter(|(k, _)| {
                        k.0 == scenario && k.1 == demo && k.2 == size && k.4 == solution
                    })
                    .map(|(k, wall)| (k.3, *wall))
                    .collect();
                (solution, points)
            })
            .collect();
        let title = format!("{scenario}: {demo} ({size}), wall time vs parties");
        let stem = dir.join(format!("{scenario}-{demo}-{size}"));
        let png = stem.with_extension("png");
        let svg = stem.with_extension("svg");
        draw(
            BitMapBackend::new(&png, SIZE).into_drawing_area(),
            &title,
            &series,
        )?;
        draw(
            SVGBackend::new(&svg, SIZE).into_drawing_area(),
            &title,
            &series,
        )?;
        written.extend([png, svg]);
    }
    Ok(written)
}

fn draw<DB: DrawingBackend>(
    area: DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    series: &[(String, Vec<(usize, f64)>)],
) -> Result<()> {
    let fail = |e: &dyn std::fmt::Display| LabError::Plot(e.to_string());
    area.fill(&WHITE).map_err(|e| fail(&e))?;
    let points = series.iter().flat_map(|(_, p)| p.iter());
    let max_parties = points.clone().map(|p| p.0).max().unwrap_or(2).max(2);
    let max_wall = points.map(|p| p.1).fold(0.0f64, f64::max).max(0.1) * 1.1;
    let mut chart = ChartBuilder::on(&area)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(1usize..max_parties + 1, 0.0..max_wall)
        .map_err(|e| fail(&e))?;
    chart
        .configure_mesh()
        .x_desc("parties")
        .y_desc("median wall time (s)")
        .draw()
        .map_err(|e| fail(&e))?;
    for (i, (name, points)) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(|e| fail(&e))?
            .label(name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_series(points.iter().map(|p| Circle::new(*p, 4, color.filled())))
            .map_err(|e| fail(&e))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| fail(&e))?;
    area.present().map_err(|e| fail(&e))?;
    Ok(())
}
