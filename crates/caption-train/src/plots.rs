//! PNG plots of a run's curves, drawn with plotters from `metrics.jsonl`: [`LOSS_PLOT`] (the loss
//! of every training step, and the train and validation loss of every epoch) and [`BLEU_PLOT`]
//! (validation BLEU-1..4 per epoch). Both axes are labelled, counted axes (steps, epochs) have
//! integer ticks, the legend sits beside the chart, and the best epoch (the trainer's criterion:
//! highest BLEU-4, else lowest validation loss) is marked by a dashed line. The trainer redraws
//! them after every epoch.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::error::{TrainError, io};

/// The BLEU plot's file name in the run folder.
pub use caption_infer::run_layout::BLEU_PLOT;
/// The loss plot's file name in the run folder.
pub use caption_infer::run_layout::LOSS_PLOT;

const SIZE: (u32, u32) = (800, 480);
/// Width of the legend's column, right of the chart.
const LEGEND_WIDTH: u32 = 180;
/// The best epoch's marker.
const BEST_COLOUR: RGBColor = RGBColor(214, 39, 40);
/// Most points drawn of the per-step loss: a long run's steps are averaged in consecutive groups
/// (a 100-epoch Flickr8k run logs ~126,000), which keeps redrawing cheap and the line readable.
const MAX_STEP_POINTS: usize = 2000;

/// The curves of a run, read from its `metrics.jsonl`. A step or epoch logged twice (a run killed
/// after logging it and resumed from an earlier checkpoint) keeps its last value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Curves {
    /// (step, loss) of every training step.
    pub step_loss: Vec<(f64, f64)>,
    /// (step at the end of the epoch, mean train loss).
    pub train_loss: Vec<(f64, f64)>,
    /// (step at the end of the epoch, validation loss).
    pub validation_loss: Vec<(f64, f64)>,
    /// (epoch, BLEU-n) for n = 1..4.
    pub bleu: [Vec<(f64, f64)>; 4],
    /// The best epoch and the step it ended at: the highest validation BLEU-4 (the first of
    /// equals), else the lowest validation loss; none without validation.
    pub best: Option<(u64, f64)>,
}

impl Curves {
    /// Reads `metrics.jsonl`; lines that are not JSON objects (a line cut by a crash) are skipped.
    pub fn read(metrics: &Path) -> Result<Self, TrainError> {
        let text = std::fs::read_to_string(metrics).map_err(io(metrics))?;
        let (mut steps, mut epochs) = (BTreeMap::new(), BTreeMap::new());
        for value in text.lines().filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok()) {
            let (Some(step), Some(epoch)) = (value["step"].as_u64(), value["epoch"].as_u64()) else { continue };
            if value.get("train_loss").is_some() {
                epochs.insert(epoch, value);
            } else if let Some(loss) = value["loss"].as_f64() {
                steps.insert(step, loss);
            }
        }
        let mut curves =
            Curves { step_loss: steps.into_iter().map(|(s, l)| (s as f64, l)).collect(), ..Curves::default() };
        for (epoch, value) in &epochs {
            let step = value["step"].as_f64().unwrap_or_default();
            if let Some(loss) = value["train_loss"].as_f64() {
                curves.train_loss.push((step, loss));
            }
            if let Some(loss) = value["validation_loss"].as_f64() {
                curves.validation_loss.push((step, loss));
            }
            for (n, series) in curves.bleu.iter_mut().enumerate() {
                if let Some(bleu) = value[format!("bleu_{}", n + 1)].as_f64() {
                    series.push((*epoch as f64, bleu));
                }
            }
        }
        // The trainer's score: BLEU-4, else the negated validation loss; strictly better wins.
        let score =
            |value: &serde_json::Value| value["bleu_4"].as_f64().or(value["validation_loss"].as_f64().map(|l| -l));
        let mut best: Option<(f64, u64, f64)> = None;
        for (epoch, value) in &epochs {
            if let Some(score) = score(value).filter(|s| s.is_finite())
                && best.is_none_or(|(b, _, _)| score > b)
            {
                best = Some((score, *epoch, value["step"].as_f64().unwrap_or_default()));
            }
        }
        curves.best = best.map(|(_, epoch, step)| (epoch, step));
        Ok(curves)
    }
}

/// The plots of the run in `run_dir` ([`LOSS_PLOT`], [`BLEU_PLOT`]), drawn or not.
pub fn plot_files(run_dir: &Path) -> Vec<PathBuf> {
    [LOSS_PLOT, BLEU_PLOT].iter().map(|name| run_dir.join(name)).collect()
}

/// Draws [`LOSS_PLOT`] and, when validation BLEU was computed, [`BLEU_PLOT`] into `run_dir` from
/// its `metrics.jsonl`; returns the files written (each written atomically).
pub fn write_plots(run_dir: &Path) -> Result<Vec<PathBuf>, TrainError> {
    let curves = Curves::read(&run_dir.join(caption_infer::run_layout::METRICS_FILE))?;
    let mut written = Vec::new();
    if !curves.step_loss.is_empty() || !curves.train_loss.is_empty() {
        let step_loss = group_means(&curves.step_loss, MAX_STEP_POINTS);
        let loss = [
            Series { name: "step loss", points: &step_loss, colour: RGBColor(160, 190, 230), width: 1 },
            Series { name: "train loss (epoch)", points: &curves.train_loss, colour: RGBColor(31, 119, 180), width: 3 },
            Series {
                name: "validation loss",
                points: &curves.validation_loss,
                colour: RGBColor(255, 127, 14),
                width: 3,
            },
        ];
        let path = run_dir.join(LOSS_PLOT);
        let best = curves.best.map(|(epoch, step)| (step, epoch));
        write_png(&path, &draw("loss", Axes { x: "step", y: "cross-entropy loss" }, &loss, best)?)?;
        written.push(path);
    }
    if curves.bleu.iter().any(|series| !series.is_empty()) {
        let colours = [RGBColor(148, 103, 189), RGBColor(140, 86, 75), RGBColor(227, 119, 194), RGBColor(44, 160, 44)];
        let names = ["BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4"];
        let series: Vec<Series<'_>> = (0..4)
            .map(|n| Series { name: names[n], points: &curves.bleu[n], colour: colours[n], width: 2 + (n == 3) as u32 })
            .collect();
        let path = run_dir.join(BLEU_PLOT);
        let best = curves.best.map(|(epoch, _)| (epoch as f64, epoch));
        let axes = Axes { x: "epoch", y: "BLEU (greedy decoding)" };
        write_png(&path, &draw("validation BLEU", axes, &series, best)?)?;
        written.push(path);
    }
    Ok(written)
}

/// `points` averaged in consecutive groups so that at most `most` remain (x and y alike).
fn group_means(points: &[(f64, f64)], most: usize) -> Vec<(f64, f64)> {
    let group = points.len().div_ceil(most.max(1)).max(1);
    points
        .chunks(group)
        .map(|chunk| {
            let n = chunk.len() as f64;
            (chunk.iter().map(|p| p.0).sum::<f64>() / n, chunk.iter().map(|p| p.1).sum::<f64>() / n)
        })
        .collect()
}

/// One line of a chart.
struct Series<'a> {
    name: &'a str,
    points: &'a [(f64, f64)],
    colour: RGBColor,
    width: u32,
}

/// The axes' descriptions; the x axis counts (steps or epochs).
struct Axes<'a> {
    x: &'a str,
    y: &'a str,
}

/// Renders a line chart into an RGB buffer: the chart on the left, the legend in a column on the
/// right, the best epoch (its x and number) as a dashed vertical line.
fn draw(
    title: &str,
    axes: Axes<'_>,
    series: &[Series<'_>],
    best: Option<(f64, u64)>,
) -> Result<image::RgbImage, TrainError> {
    let font = caption_infer::font::sans();
    let points = series.iter().flat_map(|s| s.points.iter().copied()).filter(|(x, y)| x.is_finite() && y.is_finite());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
    for (x, y) in points {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if !(x0.is_finite() && y0.is_finite()) {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    let (x1, y_margin) = (if x1 > x0 { x1 } else { x0 + 1.0 }, ((y1 - y0) * 0.05).max(1e-3));
    let (y0, y1) = ((y0 - y_margin).max(if y0 >= 0.0 { 0.0 } else { f64::NEG_INFINITY }), y1 + y_margin);

    let mut buffer = vec![0u8; (SIZE.0 * SIZE.1 * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, SIZE).into_drawing_area();
        let plot = |e: DrawingAreaErrorKind<_>| TrainError::Plot(format!("{title}: {e}"));
        root.fill(&WHITE).map_err(plot)?;
        let (chart_area, legend_area) = root.split_horizontally(SIZE.0 - LEGEND_WIDTH);
        let mut chart = ChartBuilder::on(&chart_area)
            .caption(title, (font, 22))
            .margin(12)
            .x_label_area_size(46)
            .y_label_area_size(66)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(plot)?;
        // Ticks of a counted axis only where they are whole numbers, written without a fraction.
        let whole = |x: &f64| if x.fract() == 0.0 { format!("{x:.0}") } else { String::new() };
        chart
            .configure_mesh()
            .x_desc(axes.x)
            .y_desc(axes.y)
            .x_label_formatter(&whole)
            .y_label_formatter(&|y| format!("{y:.2}"))
            .label_style((font, 14))
            .axis_desc_style((font, 15))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(plot)?;
        let mut legend: Vec<(String, RGBColor)> = Vec::new();
        for s in series.iter().filter(|s| !s.points.is_empty()) {
            let style = ShapeStyle::from(s.colour).stroke_width(s.width);
            chart.draw_series(LineSeries::new(s.points.iter().copied(), style)).map_err(plot)?;
            if s.width > 1 && s.points.len() < 200 {
                chart.draw_series(s.points.iter().map(|&p| Circle::new(p, 3, s.colour.filled()))).map_err(plot)?;
            }
            legend.push((s.name.to_string(), s.colour));
        }
        if let Some((x, epoch)) = best.filter(|(x, _)| (x0..=x1).contains(x)) {
            let line = DashedLineSeries::new([(x, y0), (x, y1)], 6, 4, BEST_COLOUR.stroke_width(2));
            chart.draw_series(line).map_err(plot)?;
            legend.push((format!("best: epoch {epoch}"), BEST_COLOUR));
        }
        // The legend, beside the data: a swatch and a name per line.
        for (row, (name, colour)) in legend.iter().enumerate() {
            let y = 60 + 26 * row as i32;
            legend_area.draw(&PathElement::new([(6, y), (30, y)], colour.stroke_width(3))).map_err(plot)?;
            legend_area.draw(&Text::new(name.as_str(), (38, y - 8), (font, 14))).map_err(plot)?;
        }
        root.present().map_err(plot)?;
    }
    image::RgbImage::from_raw(SIZE.0, SIZE.1, buffer).ok_or_else(|| TrainError::Plot("buffer size".into()))
}

fn write_png(path: &Path, picture: &image::RgbImage) -> Result<(), TrainError> {
    let mut bytes = Vec::new();
    picture
        .write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)
        .map_err(|e| TrainError::Plot(format!("{}: {e}", path.display())))?;
    crate::run_folder::write_atomically(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(lines: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(caption_infer::run_layout::METRICS_FILE), lines.join("\n")).unwrap();
        dir
    }

    #[test]
    fn curves_keep_the_last_value_of_a_step_logged_twice_and_skip_cut_lines() {
        let dir = metrics(&[
            r#"{"step":1,"epoch":1,"loss":3.0,"lr":0.1}"#,
            r#"{"step":2,"epoch":1,"loss":2.5,"lr":0.1}"#,
            r#"{"step":2,"epoch":1,"loss":2.4,"lr":0.1}"#,
            r#"{"epoch":1,"step":2,"train_loss":2.7,"validation_loss":2.9,"bleu_1":0.5,"bleu_2":0.3,"bleu_3":0.2,"bleu_4":0.1}"#,
            r#"{"step":3,"epoch":2,"lo"#,
        ]);
        let curves = Curves::read(&dir.path().join(caption_infer::run_layout::METRICS_FILE)).unwrap();
        assert_eq!(curves.step_loss, vec![(1.0, 3.0), (2.0, 2.4)]);
        assert_eq!(curves.train_loss, vec![(2.0, 2.7)]);
        assert_eq!(curves.validation_loss, vec![(2.0, 2.9)]);
        assert_eq!(curves.bleu[3], vec![(1.0, 0.1)]);
        assert_eq!(curves.best, Some((1, 2.0)));
    }

    #[test]
    fn the_best_epoch_is_the_trainers_first_highest_bleu_4_else_lowest_validation_loss() {
        let dir = metrics(&[
            r#"{"epoch":1,"step":5,"train_loss":2.0,"validation_loss":2.5,"bleu_4":0.1}"#,
            r#"{"epoch":2,"step":10,"train_loss":1.5,"validation_loss":2.0,"bleu_4":0.3}"#,
            r#"{"epoch":3,"step":15,"train_loss":1.0,"validation_loss":1.9,"bleu_4":0.3}"#,
        ]);
        assert_eq!(
            Curves::read(&dir.path().join(caption_infer::run_layout::METRICS_FILE)).unwrap().best,
            Some((2, 10.0))
        );
        let dir = metrics(&[
            r#"{"epoch":1,"step":5,"train_loss":2.0,"validation_loss":2.5}"#,
            r#"{"epoch":2,"step":10,"train_loss":1.5,"validation_loss":1.7}"#,
            r#"{"epoch":3,"step":15,"train_loss":1.0,"validation_loss":1.9}"#,
        ]);
        assert_eq!(
            Curves::read(&dir.path().join(caption_infer::run_layout::METRICS_FILE)).unwrap().best,
            Some((2, 10.0))
        );
        let dir = metrics(&[r#"{"epoch":1,"step":5,"train_loss":2.0}"#]);
        assert_eq!(Curves::read(&dir.path().join(caption_infer::run_layout::METRICS_FILE)).unwrap().best, None);
    }

    #[test]
    fn plots_are_png_files_with_the_curves_drawn_in_their_colours() {
        let dir = metrics(&[
            r#"{"step":1,"epoch":1,"loss":3.0}"#,
            r#"{"step":2,"epoch":1,"loss":2.0}"#,
            r#"{"epoch":1,"step":2,"train_loss":2.5,"validation_loss":2.6,"bleu_1":0.4,"bleu_2":0.3,"bleu_3":0.2,"bleu_4":0.1}"#,
            r#"{"step":3,"epoch":2,"loss":1.5}"#,
            r#"{"step":4,"epoch":2,"loss":1.0}"#,
            r#"{"epoch":2,"step":4,"train_loss":1.25,"validation_loss":1.5,"bleu_1":0.6,"bleu_2":0.5,"bleu_3":0.4,"bleu_4":0.3}"#,
        ]);
        let written = write_plots(dir.path()).unwrap();
        assert_eq!(written, vec![dir.path().join(LOSS_PLOT), dir.path().join(BLEU_PLOT)]);
        let loss = image::open(&written[0]).unwrap().into_rgb8();
        assert_eq!(loss.dimensions(), SIZE);
        let has = |picture: &image::RgbImage, rgb: [u8; 3]| picture.pixels().filter(|p| p.0 == rgb).count();
        assert!(has(&loss, [255, 127, 14]) > 50, "validation loss line missing");
        assert!(has(&loss, [31, 119, 180]) > 50, "train loss line missing");
        // Text is drawn: dark pixels beyond the axes' own lines.
        assert!(loss.pixels().filter(|p| p.0.iter().all(|&c| c < 100)).count() > 500);
        let bleu = image::open(&written[1]).unwrap().into_rgb8();
        assert!(has(&bleu, [44, 160, 44]) > 50, "BLEU-4 line missing");
        // The legend is beside the chart, not over its data: each line's colour appears in the
        // legend's column as a swatch, and the chart's side has the lines.
        let chart_width = SIZE.0 - LEGEND_WIDTH;
        let in_columns = |picture: &image::RgbImage, rgb: [u8; 3], columns: std::ops::Range<u32>| {
            picture.enumerate_pixels().filter(|(x, _, p)| columns.contains(x) && p.0 == rgb).count()
        };
        for colour in [[255, 127, 14], [31, 119, 180]] {
            assert!(in_columns(&loss, colour, chart_width..SIZE.0) > 20, "no legend swatch {colour:?}");
            assert!(in_columns(&loss, colour, 0..chart_width) > 50, "no line {colour:?}");
        }
        // The best epoch (2: BLEU-4 0.3) is marked at its x, on both plots.
        let best = [BEST_COLOUR.0, BEST_COLOUR.1, BEST_COLOUR.2];
        for picture in [&loss, &bleu] {
            assert!(in_columns(picture, best, 0..chart_width) > 100, "best epoch not marked");
            assert!(in_columns(picture, best, chart_width..SIZE.0) > 20, "best epoch not in the legend");
            // The marker is vertical: its pixels in the chart share one or two columns.
            let mut columns: Vec<u32> = picture
                .enumerate_pixels()
                .filter(|(x, _, p)| *x < chart_width && p.0 == best)
                .map(|(x, _, _)| x)
                .collect();
            columns.dedup();
            columns.sort();
            columns.dedup();
            assert!(columns.len() <= 3, "{columns:?}");
            // At the right end: epoch 2 and step 4 are the largest x.
            assert!(columns[0] > chart_width * 3 / 4, "{columns:?}");
        }
    }

    #[test]
    fn long_runs_draw_group_means_of_the_step_loss() {
        let points: Vec<(f64, f64)> = (1..=10_001).map(|s| (s as f64, if s % 2 == 0 { 1.0 } else { 3.0 })).collect();
        let means = group_means(&points, MAX_STEP_POINTS);
        assert!(means.len() <= MAX_STEP_POINTS && means.len() > MAX_STEP_POINTS / 2, "{}", means.len());
        assert_eq!(means[0], (3.5, 2.0)); // steps 1..=6 (groups of 6): losses 3, 1, 3, 1, 3, 1
        assert_eq!(group_means(&points[..10], MAX_STEP_POINTS), points[..10].to_vec());
    }

    #[test]
    fn no_validation_means_no_bleu_plot() {
        let dir = metrics(&[r#"{"step":1,"epoch":1,"loss":3.0}"#, r#"{"epoch":1,"step":1,"train_loss":3.0}"#]);
        assert_eq!(write_plots(dir.path()).unwrap(), vec![dir.path().join(LOSS_PLOT)]);
    }
}
