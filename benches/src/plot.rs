//! Line charts as self-contained SVG, so the report needs no plotting library or browser.

use std::fmt::Write;

/// One line on a chart.
#[derive(Clone, Debug)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    /// An index into the palette; by default each series takes the next color.
    pub color: Option<usize>,
    /// An SVG `stroke-dasharray`, e.g. `"6 3"`; solid when `None`.
    pub dash: Option<&'static str>,
}

/// A chart with numeric axes; either axis may be logarithmic.
#[derive(Clone, Debug)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub log_x: bool,
    pub log_y: bool,
    pub series: Vec<Series>,
}

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 420.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 170.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;
const COLORS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
];

impl Chart {
    pub fn to_svg(&self) -> String {
        let points = self.series.iter().flat_map(|s| s.points.iter().copied());
        let (xs, ys): (Vec<f64>, Vec<f64>) = points
            .filter(|&(x, y)| (!self.log_x || x > 0.0) && (!self.log_y || y > 0.0))
            .unzip();
        let axis_x = Axis::new(&xs, self.log_x);
        let axis_y = Axis::new(&ys, self.log_y);
        let plot_w = WIDTH - LEFT - RIGHT;
        let plot_h = HEIGHT - TOP - BOTTOM;
        let px = |x: f64| LEFT + axis_x.fraction(x) * plot_w;
        let py = |y: f64| TOP + (1.0 - axis_y.fraction(y)) * plot_h;

        let mut svg = String::new();
        let _ = writeln!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="22" font-size="15" text-anchor="middle">{}</text>"#,
            LEFT + plot_w / 2.0,
            escape(&self.title)
        );
        for tick in axis_x.ticks() {
            let x = px(tick);
            let _ = writeln!(
                svg,
                r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" stroke="#eee"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
                TOP + plot_h,
                TOP + plot_h + 16.0,
                label(tick)
            );
        }
        for tick in axis_y.ticks() {
            let y = py(tick);
            let _ = writeln!(
                svg,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#eee"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
                LEFT + plot_w,
                LEFT - 6.0,
                y + 4.0,
                label(tick)
            );
        }
        let _ = writeln!(
            svg,
            r##"<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#444"/>"##
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            LEFT + plot_w / 2.0,
            HEIGHT - 18.0,
            escape(&self.x_label)
        );
        let _ = writeln!(
            svg,
            r#"<text transform="translate(18 {:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
            TOP + plot_h / 2.0,
            escape(&self.y_label)
        );
        for (i, series) in self.series.iter().enumerate() {
            let color = COLORS[series.color.unwrap_or(i) % COLORS.len()];
            let dash = series
                .dash
                .map_or(String::new(), |d| format!(r#" stroke-dasharray="{d}""#));
            let path: Vec<String> = series
                .points
                .iter()
                .filter(|&&(x, y)| (!self.log_x || x > 0.0) && (!self.log_y || y > 0.0))
                .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
                .collect();
            let _ = writeln!(
                svg,
                r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"{dash}/>"#,
                path.join(" ")
            );
            for point in &path {
                let (x, y) = point.split_once(',').unwrap_or(("0", "0"));
                let _ = writeln!(svg, r#"<circle cx="{x}" cy="{y}" r="3" fill="{color}"/>"#);
            }
            let ly = TOP + 10.0 + i as f64 * 18.0;
            let lx = LEFT + plot_w + 12.0;
            let _ = writeln!(
                svg,
                r#"<line x1="{lx}" y1="{ly}" x2="{:.1}" y2="{ly}" stroke="{color}" stroke-width="2"{dash}/><text x="{:.1}" y="{:.1}">{}</text>"#,
                lx + 18.0,
                lx + 24.0,
                ly + 4.0,
                escape(&series.name)
            );
        }
        svg.push_str("</svg>\n");
        svg
    }
}

/// Maps data values onto `0..=1` of the plot area.
struct Axis {
    min: f64,
    max: f64,
    log: bool,
}

impl Axis {
    fn new(values: &[f64], log: bool) -> Axis {
        let mut min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let mut max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if !min.is_finite() || !max.is_finite() {
            (min, max) = (if log { 1.0 } else { 0.0 }, 1.0);
        }
        if log {
            min = 10f64.powf(min.log10().floor());
            max = 10f64.powf(max.log10().ceil());
            if max <= min {
                max = min * 10.0;
            }
        } else {
            min = min.min(0.0);
            if max <= min {
                max = min + 1.0;
            }
            max *= 1.05;
        }
        Axis { min, max, log }
    }

    fn fraction(&self, v: f64) -> f64 {
        if self.log {
            (v.log10() - self.min.log10()) / (self.max.log10() - self.min.log10())
        } else {
            (v - self.min) / (self.max - self.min)
        }
    }

    fn ticks(&self) -> Vec<f64> {
        if self.log {
            let mut ticks = Vec::new();
            let mut t = self.min;
            while t <= self.max * 1.0001 {
                ticks.push(t);
                t *= 10.0;
            }
            return ticks;
        }
        let raw = (self.max - self.min) / 5.0;
        let magnitude = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 5.0, 10.0]
            .iter()
            .map(|m| m * magnitude)
            .find(|s| *s >= raw)
            .unwrap_or(raw);
        let mut ticks = Vec::new();
        let mut t = (self.min / step).ceil() * step;
        while t <= self.max {
            ticks.push(t);
            t += step;
        }
        ticks
    }
}

fn label(v: f64) -> String {
    if v.abs() >= 1e6 {
        format!("{:.0}M", v / 1e6)
    } else if v.abs() >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v.fract().abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_every_series_and_point() {
        let chart = Chart {
            title: "t <1>".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            log_x: false,
            log_y: true,
            series: vec![
                Series {
                    name: "a".into(),
                    points: vec![(1.0, 10.0), (2.0, 100.0)],
                    color: None,
                    dash: Some("2 2"),
                },
                Series {
                    name: "b".into(),
                    points: vec![(1.0, 5.0), (3.0, 0.0)],
                    color: None,
                    dash: None,
                },
            ],
        };
        let svg = chart.to_svg();
        assert_eq!(svg.matches("<polyline").count(), 2);
        // The zero on a log axis cannot be drawn, so b has one point.
        assert_eq!(svg.matches("<circle").count(), 3);
        assert!(svg.contains("t &lt;1&gt;"));
        assert_eq!(
            svg.matches(r#"stroke-dasharray="2 2""#).count(),
            2,
            "line and legend"
        );
    }
}
