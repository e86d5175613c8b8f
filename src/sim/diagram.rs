//! The space-time diagram of a run (`--html FILE`): one self-contained HTML file, no network.
//!
//! Time runs down, one row per event (simulated milliseconds on the left); a lane per client
//! channel (`c0 command`, `c0 relay`, ...), then the server and the disk. Bytes are arrows from
//! the write to the delivery that brings their last byte (up) or from the server's flush to
//! each delivery (down); records are arrows from the server to the disk and back when durable.
//! Faults, crashes and restarts cross every lane. The violating event (the last one of a failed
//! run) is drawn larger in crimson on a band, and the page scrolls to it on load. Hovering any
//! event or arrow shows its trace line; checkboxes hide clients (and `FILE.html#hide=0,2` opens
//! with clients 0 and 2 hidden). It is built from the typed
//! [`Event`]s the trace keeps next to its lines ([`super::trace`]), not by parsing text. Its tests,
//! one in headless Chromium, are with the CLI's (`sim::cli`), which may name the environment.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;

use super::check::Violation;
use super::net::Way;
use super::trace::Event;
use crate::core::{Channel, ConnId};
use crate::results::{xml, Json};

const ROW_PX: usize = 16;
const LANE_PX: usize = 120;
/// The time column left of the lanes.
const LEFT_PX: usize = 80;
const TOP_PX: usize = 12;

/// A run to draw.
pub struct Diagram<'a> {
    pub title: &'a str,
    /// The kept trace lines, one per event.
    pub lines: &'a [String],
    /// Each line's time and typed event.
    pub events: &'a [(u64, Event)],
    pub violation: Option<&'a Violation>,
    /// A sentence under the title (what produced the run).
    pub note: Option<&'a str>,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Lane {
    Client(usize, Channel),
    Server,
    Disk,
}

struct Layout {
    lanes: Vec<Lane>,
}

impl Layout {
    fn x(&self, lane: Lane) -> usize {
        let index = self.lanes.iter().position(|&l| l == lane).unwrap_or(0);
        LEFT_PX + index * LANE_PX + LANE_PX / 2
    }

    fn width(&self) -> usize {
        LEFT_PX + self.lanes.len() * LANE_PX
    }
}

fn y(row: usize) -> usize {
    TOP_PX + row * ROW_PX + ROW_PX / 2
}

/// The client of an event, for the filter.
fn client_of(event: &Event, conns: &BTreeMap<ConnId, (usize, Channel)>) -> Option<usize> {
    match *event {
        Event::Write { client, .. }
        | Event::Close { client, .. }
        | Event::Sent { client }
        | Event::Reply { client }
        | Event::Lost { client }
        | Event::Push { client, .. }
        | Event::Refused { client, .. }
        | Event::Open { client, .. }
        | Event::Hostile { client } => Some(client),
        Event::Deliver { conn, .. } | Event::Flush { conn, .. } => conns.get(&conn).map(|c| c.0),
        _ => None,
    }
}

/// The SVG and the page around it.
pub fn html(d: &Diagram<'_>) -> String {
    // Connections and clients, from the events that open them.
    let mut conns: BTreeMap<ConnId, (usize, Channel)> = BTreeMap::new();
    let mut clients = 0;
    for (_, event) in d.events {
        if let Event::Open { client, chan, conn } = *event {
            conns.insert(conn, (client, chan));
        }
        if let Some(client) = client_of(event, &conns) {
            clients = clients.max(client + 1);
        }
    }
    let mut lanes: Vec<Lane> = (0..clients)
        .flat_map(|c| [Lane::Client(c, Channel::Command), Lane::Client(c, Channel::Relay)])
        .collect();
    lanes.extend([Lane::Server, Lane::Disk]);
    let layout = Layout { lanes };
    // Ticks only advance time: no row.
    let drawn: Vec<usize> = (0..d.events.len()).filter(|&i| d.events[i].1 != Event::Tick).collect();
    let violating = d.violation.and(drawn.last().copied());
    let height = TOP_PX * 2 + drawn.len().max(1) * ROW_PX;

    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg id=\"diagram\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\">\
         <defs><marker id=\"head\" viewBox=\"0 0 8 8\" refX=\"7\" refY=\"4\" markerWidth=\"7\" \
         markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0 L8,4 L0,8 z\" \
         fill=\"context-stroke\"/></marker></defs>",
        layout.width()
    );
    for &lane in &layout.lanes {
        let x = layout.x(lane);
        let client = match lane {
            Lane::Client(c, _) => format!(" data-c=\"{c}\""),
            _ => String::new(),
        };
        let _ = write!(
            svg,
            "<line class=\"lane\"{client} x1=\"{x}\" y1=\"0\" x2=\"{x}\" y2=\"{height}\"/>"
        );
    }
    if let Some(&i) = violating.as_ref() {
        let row = drawn.iter().position(|&d| d == i).expect("drawn");
        let _ = write!(
            svg,
            "<rect class=\"violation-band\" x=\"0\" y=\"{}\" width=\"{}\" height=\"{ROW_PX}\"/>",
            y(row) - ROW_PX / 2,
            layout.width()
        );
    }

    let mut up: BTreeMap<ConnId, VecDeque<(usize, usize, usize)>> = BTreeMap::new();
    let mut closes: BTreeMap<ConnId, (usize, usize)> = BTreeMap::new();
    let mut flushes: BTreeMap<ConnId, (usize, usize)> = BTreeMap::new();
    let mut last_ms = None;
    let mut arrows = String::new();
    let mut dots = String::new();
    for (row, &i) in drawn.iter().enumerate() {
        let (at_ms, event) = d.events[i];
        let y = y(row);
        if last_ms != Some(at_ms) {
            let _ = write!(dots, "<text class=\"time\" x=\"4\" y=\"{}\">{at_ms} ms</text>", y + 4);
            last_ms = Some(at_ms);
        }
        let client = client_of(&event, &conns);
        let lane_of = |conn: ConnId| conns.get(&conn).map(|&(c, chan)| Lane::Client(c, chan));
        let (lane, kind) = match event {
            Event::Write { client, conn, len } => {
                up.entry(conn).or_default().push_back((row, i, len));
                (lane_of(conn).unwrap_or(Lane::Client(client, Channel::Command)), "write")
            }
            Event::Close { client, conn } => {
                closes.insert(conn, (row, i));
                (lane_of(conn).unwrap_or(Lane::Client(client, Channel::Command)), "close")
            }
            Event::Sent { client } => (Lane::Client(client, Channel::Command), "sent"),
            Event::Reply { client } => (Lane::Client(client, Channel::Command), "reply"),
            Event::Lost { client } => (Lane::Client(client, Channel::Command), "lost"),
            Event::Push { client, .. } => (Lane::Client(client, Channel::Relay), "push"),
            Event::Refused { client, chan } => (Lane::Client(client, chan), "refused"),
            Event::Open { client, chan, .. } => (Lane::Client(client, chan), "open"),
            Event::Hostile { client } => (Lane::Client(client, Channel::Command), "hostile"),
            Event::Deliver { conn, way: Way::Up, len, eof } => {
                let from = lane_of(conn);
                let mut left = len;
                let queue = up.entry(conn).or_default();
                while left > 0 {
                    let Some(front) = queue.front_mut() else { break };
                    let taken = front.2.min(left);
                    front.2 -= taken;
                    left -= taken;
                    if front.2 == 0 {
                        let (from_row, from_i, _) = queue.pop_front().expect("front exists");
                        if let Some(from) = from {
                            arrow(
                                &mut arrows,
                                &layout,
                                (from, from_row, from_i),
                                (Lane::Server, row, i),
                                client,
                            );
                        }
                    }
                }
                if eof {
                    if let (Some((from_row, from_i)), Some(from)) = (closes.remove(&conn), from) {
                        arrow(
                            &mut arrows,
                            &layout,
                            (from, from_row, from_i),
                            (Lane::Server, row, i),
                            client,
                        );
                    }
                }
                (Lane::Server, "deliver")
            }
            Event::Deliver { conn, way: Way::Down, .. } => {
                let to = lane_of(conn).unwrap_or(Lane::Server);
                if let Some(&(from_row, from_i)) = flushes.get(&conn) {
                    arrow(
                        &mut arrows,
                        &layout,
                        (Lane::Server, from_row, from_i),
                        (to, row, i),
                        client,
                    );
                }
                (to, "deliver")
            }
            Event::Flush { conn, close } => {
                flushes.insert(conn, (row, i));
                (Lane::Server, if close { "close" } else { "flush" })
            }
            Event::Persist { .. } => {
                arrow(&mut arrows, &layout, (Lane::Server, row, i), (Lane::Disk, row, i), None);
                (Lane::Server, "persist")
            }
            Event::Durable { .. } => {
                arrow(&mut arrows, &layout, (Lane::Disk, row, i), (Lane::Server, row, i), None);
                (Lane::Disk, "durable")
            }
            Event::Snapshot { .. } => (Lane::Disk, "snapshot"),
            Event::Hashed => (Lane::Server, "hashed"),
            Event::Tick => (Lane::Server, "tick"),
            Event::Liveness | Event::Fault | Event::Restart { .. } => {
                let kind = match event {
                    Event::Liveness => "liveness",
                    Event::Fault => "fault",
                    _ => "restart",
                };
                let _ = write!(
                    dots,
                    "<line class=\"across {kind}\" data-i=\"{i}\" x1=\"{LEFT_PX}\" y1=\"{y}\" \
                     x2=\"{}\" y2=\"{y}\"><title>{}</title></line>",
                    layout.width(),
                    xml(&d.lines[i])
                );
                (Lane::Server, kind)
            }
        };
        let x = layout.x(lane);
        let filter = client.map(|c| format!(" data-c=\"{c}\"")).unwrap_or_default();
        let (id, class, r) =
            if violating == Some(i) { (" id=\"violation\"", " violation", 7) } else { ("", "", 4) };
        let _ = write!(
            dots,
            "<circle{id} class=\"ev {kind}{class}\"{filter} data-i=\"{i}\" cx=\"{x}\" cy=\"{y}\" \
             r=\"{r}\"><title>{}</title></circle>",
            xml(&d.lines[i])
        );
    }
    svg.push_str(&arrows);
    svg.push_str(&dots);
    svg.push_str("</svg>");

    let mut page =
        String::from("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    let _ = write!(page, "<title>{}</title><style>{STYLE}</style></head><body>", xml(d.title));
    let _ = write!(page, "<div id=\"top\"><h1>{}</h1>", xml(d.title));
    if let Some(note) = d.note {
        let _ = write!(page, "<p class=\"note\">{}</p>", xml(note));
    }
    match d.violation {
        Some(v) => {
            let _ = write!(
                page,
                "<p id=\"violation-text\">VIOLATION at {} ms: {}: {}</p>",
                v.at_ms.unwrap_or_default(),
                xml(v.invariant.sentence()),
                xml(&v.detail)
            );
        }
        None => page.push_str("<p id=\"violation-text\" class=\"ok\">no violation</p>"),
    }
    page.push_str("<div id=\"filters\">clients: ");
    for c in 0..clients {
        let _ = write!(
            page,
            "<label><input type=\"checkbox\" data-filter=\"{c}\" checked> c{c}</label> "
        );
    }
    page.push_str("</div><div id=\"info\">hover an event or an arrow for its trace line</div>");
    page.push_str("<div id=\"lanes\">");
    for &lane in &layout.lanes {
        let (label, filter) = match lane {
            Lane::Client(c, Channel::Command) => {
                (format!("c{c} command"), format!(" data-c=\"{c}\""))
            }
            Lane::Client(c, Channel::Relay) => (format!("c{c} relay"), format!(" data-c=\"{c}\"")),
            Lane::Server => ("server".to_owned(), String::new()),
            Lane::Disk => ("disk".to_owned(), String::new()),
        };
        let left = layout.x(lane) - LANE_PX / 2;
        let _ = write!(
            page,
            "<span class=\"lane-label\"{filter} style=\"left:{left}px;width:{LANE_PX}px\">{label}</span>"
        );
    }
    page.push_str("</div></div>");
    page.push_str(&svg);
    let lines = Json::Arr(d.lines.iter().map(|l| Json::Str(l.clone())).collect());
    // Inside a script element only `</` could end it early.
    let lines = lines.to_string().replace("</", "<\\/");
    let _ = write!(page, "<script>const LINES = {lines};\n{SCRIPT}</script></body></html>\n");
    page
}

/// An arrow from one event to another; its hover text is both events' lines.
fn arrow(
    out: &mut String,
    layout: &Layout,
    (from, from_row, from_i): (Lane, usize, usize),
    (to, to_row, to_i): (Lane, usize, usize),
    client: Option<usize>,
) {
    let (x1, y1, x2, y2) = (layout.x(from), y(from_row), layout.x(to), y(to_row));
    let filter = client.map(|c| format!(" data-c=\"{c}\"")).unwrap_or_default();
    let _ = write!(
        out,
        "<line class=\"msg\"{filter} data-i=\"{from_i} {to_i}\" x1=\"{x1}\" y1=\"{y1}\" x2=\"{x2}\" \
         y2=\"{y2}\" marker-end=\"url(#head)\"/>"
    );
}

const STYLE: &str = "
body { font: 13px system-ui, sans-serif; margin: 0; }
#top { position: sticky; top: 0; background: #fff; z-index: 1; padding: 6px 8px 0;
       border-bottom: 1px solid #ccc; }
h1 { font-size: 15px; margin: 0 0 4px; }
.note { margin: 0 0 4px; color: #444; }
#violation-text { margin: 0 0 4px; color: crimson; font-weight: bold; }
#violation-text.ok { color: #2a7a2a; }
#info { font-family: ui-monospace, monospace; white-space: pre-wrap; min-height: 2.6em;
        background: #f6f6f6; padding: 2px 4px; margin: 4px 0; }
#lanes { position: relative; height: 20px; }
.lane-label { position: absolute; text-align: center; font-weight: bold; }
svg { display: block; }
.lane { stroke: #ccc; }
.time { font-size: 10px; fill: #888; }
.ev { fill: #777; }
.ev.sent { fill: #1f5fbf; } .ev.reply { fill: #2a7a2a; } .ev.push { fill: #7b3fb0; }
.ev.lost, .ev.refused, .ev.close { fill: #d07a00; }
.ev.persist, .ev.durable, .ev.snapshot { fill: #8b5a2b; }
.msg { stroke: #9aa; stroke-width: 1; }
.across { stroke-width: 2; stroke-dasharray: 6 3; }
.across.fault { stroke: #d00; } .across.restart { stroke: #2a7a2a; } .across.liveness { stroke: #999; }
.violation-band { fill: rgba(220, 20, 60, 0.15); }
.ev.violation { fill: crimson; stroke: #600; stroke-width: 2; }
.hover { stroke: #000 !important; stroke-width: 2 !important; }
";

const SCRIPT: &str = r#"
const info = document.getElementById('info');
function show(el) {
  const lines = el.dataset.i.split(' ').map(i => LINES[Number(i)]);
  info.textContent = lines.join('\n  -> ');
}
let hovered = null;
document.getElementById('diagram').addEventListener('mouseover', e => {
  const el = e.target.closest('[data-i]');
  if (!el) return;
  if (hovered) hovered.classList.remove('hover');
  hovered = el;
  el.classList.add('hover');
  show(el);
});
for (const box of document.querySelectorAll('[data-filter]')) {
  box.addEventListener('change', () => {
    for (const el of document.querySelectorAll('[data-c="' + box.dataset.filter + '"]')) {
      el.style.display = box.checked ? '' : 'none';
    }
  });
}
// A link can hide clients: FILE.html#hide=0,2
const hide = /hide=([0-9,]+)/.exec(location.hash);
for (const c of hide ? hide[1].split(',') : []) {
  const box = document.querySelector('[data-filter="' + c + '"]');
  if (box) { box.checked = false; box.dispatchEvent(new Event('change')); }
}
const violation = document.getElementById('violation');
if (violation) {
  violation.scrollIntoView({ block: 'center', inline: 'center' });
  show(violation);
  const r = violation.getBoundingClientRect();
  const top = document.getElementById('top').getBoundingClientRect().bottom;
  const visible = r.width > 0 && r.top >= top && r.bottom <= innerHeight
    && r.left >= 0 && r.right <= innerWidth;
  // What the browser paints at the event's centre is the event, not the header or a line.
  const hit = document.elementFromPoint((r.left + r.right) / 2, (r.top + r.bottom) / 2);
  document.body.dataset.violationVisible = visible ? 'yes' : 'no';
  document.body.dataset.violationOnTop = hit === violation ? 'yes' : 'no';
  document.body.dataset.violationFill = getComputedStyle(violation).fill;
}
"#;
