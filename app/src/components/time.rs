//! Times in the reader's own time zone: "09:03", "Yesterday 17:40", "3 Nov 17:40", with the full date
//! and time on hover. The server cannot know the reader's zone, so server-rendered pages show UTC and
//! the browser switches to local time once it has hydrated (the first render still matches the
//! server's, as hydration needs).

use crate::model::Timestamp;
use leptos::prelude::*;

const DAY_MS: i64 = 86_400_000;
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = [
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
];

/// A moment as the reader's wall clock shows it: milliseconds since the epoch shifted by the zone's
/// offset at that moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Local(i64);

impl Local {
    /// `offset_minutes` is ahead of UTC (e.g. +60 for Paris in winter).
    pub fn new(at: Timestamp, offset_minutes: i32) -> Self {
        Self(at.millis() + i64::from(offset_minutes) * 60_000)
    }

    /// Days since 1970-01-01 on the reader's calendar.
    pub fn day(self) -> i64 {
        self.0.div_euclid(DAY_MS)
    }

    fn hh_mm(self) -> String {
        let minutes = self.0.rem_euclid(DAY_MS) / 60_000;
        format!("{:02}:{:02}", minutes / 60, minutes % 60)
    }

    fn date(self) -> (i64, u32, u32) {
        crate::model::civil_from_days(self.day())
    }
}

/// The short label of a message time, as seen at `now`.
pub fn short_label(at: Local, now: Local) -> String {
    let (year, month, day) = at.date();
    match now.day() - at.day() {
        0 => at.hh_mm(),
        1 => format!("Yesterday {}", at.hh_mm()),
        _ if year == now.date().0 => {
            format!("{day} {} {}", &MONTHS[month as usize - 1][..3], at.hh_mm())
        }
        _ => format!("{day} {} {year}", &MONTHS[month as usize - 1][..3]),
    }
}

/// The whole date and time, for the hover title: "Tuesday, 1 December 2026, 09:03".
pub fn full_label(at: Local) -> String {
    let (year, month, day) = at.date();
    let weekday = WEEKDAYS[at.day().rem_euclid(7) as usize];
    format!(
        "{weekday}, {day} {} {year}, {}",
        MONTHS[month as usize - 1],
        at.hh_mm()
    )
}

/// The heading of a day in the message list: "Today", "Yesterday", "Monday, 30 November" (this year)
/// or "30 November 2025".
pub fn day_heading(day: Local, now: Local) -> String {
    let (year, month, date) = day.date();
    match now.day() - day.day() {
        0 => "Today".to_owned(),
        1 => "Yesterday".to_owned(),
        _ if year == now.date().0 => format!(
            "{}, {date} {}",
            WEEKDAYS[day.day().rem_euclid(7) as usize],
            MONTHS[month as usize - 1]
        ),
        _ => format!("{date} {} {year}", MONTHS[month as usize - 1]),
    }
}

/// The reader's clock: `None` while the page is server-rendered or hydrating, then the time now,
/// refreshed every minute so "Today" becomes "Yesterday" at midnight.
#[derive(Clone, Copy)]
pub struct ReaderClock(RwSignal<Option<Timestamp>>);

impl ReaderClock {
    pub fn provide() {
        let now = RwSignal::new(None);
        // Effects run only in the browser, after hydration.
        Effect::new(move |_| {
            #[cfg(feature = "hydrate")]
            {
                now.set(Some(Timestamp(js_sys::Date::now() as i64)));
                leptos::task::spawn_local(async move {
                    loop {
                        gloo_timers::future::TimeoutFuture::new(60_000).await;
                        now.set(Some(Timestamp(js_sys::Date::now() as i64)));
                    }
                });
            }
        });
        provide_context(Self(now));
    }

    pub fn get() -> Self {
        use_context().unwrap_or_else(|| Self(RwSignal::new(None)))
    }

    /// The time now on the reader's wall clock, once known.
    pub fn now(self) -> Option<Local> {
        self.0.get().map(local)
    }
}

/// `at` in the browser's time zone (the zone's offset at that moment, daylight saving included).
pub fn local(at: Timestamp) -> Local {
    #[cfg(feature = "hydrate")]
    {
        let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(at.millis() as f64));
        // JavaScript gives minutes behind UTC.
        Local::new(at, -(date.get_timezone_offset() as i32))
    }
    #[cfg(not(feature = "hydrate"))]
    {
        Local::new(at, 0)
    }
}

/// A `<time>` with the short local label, and the full date and time on hover.
#[component]
pub fn LocalTime(at: Timestamp, #[prop(optional)] class: &'static str) -> impl IntoView {
    let clock = ReaderClock::get();
    let label = move || match clock.now() {
        Some(now) => short_label(local(at), now),
        None => at.format_utc(),
    };
    let title = move || match clock.now() {
        Some(_) => full_label(local(at)),
        None => at.format_utc(),
    };
    view! { <time class=class datetime=at.iso() title=title>{label}</time> }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str, offset: i32) -> Local {
        // "YYYY-MM-DD HH:MM" on the local wall clock, `offset` minutes ahead of UTC.
        let (date, time) = text.split_once(' ').unwrap();
        let parts: Vec<i64> = date.split('-').map(|p| p.parse().unwrap()).collect();
        let (h, m) = time.split_once(':').unwrap();
        let days = crate::model::days_from_civil(parts[0], parts[1] as u32, parts[2] as u32);
        let wall =
            days * DAY_MS + (h.parse::<i64>().unwrap() * 60 + m.parse::<i64>().unwrap()) * 60_000;
        Local::new(Timestamp(wall - i64::from(offset) * 60_000), offset)
    }

    #[test]
    fn labels_follow_the_readers_calendar() {
        let now = at("2026-12-01 10:00", 60);
        assert_eq!(short_label(at("2026-12-01 09:03", 60), now), "09:03");
        assert_eq!(
            short_label(at("2026-11-30 17:40", 60), now),
            "Yesterday 17:40"
        );
        assert_eq!(short_label(at("2026-11-03 17:40", 60), now), "3 Nov 17:40");
        assert_eq!(short_label(at("2025-12-24 08:00", 60), now), "24 Dec 2025");
        assert_eq!(
            full_label(at("2026-12-01 09:03", 60)),
            "Tuesday, 1 December 2026, 09:03"
        );
        assert_eq!(day_heading(at("2026-11-30 23:59", 60), now), "Yesterday");
        assert_eq!(
            day_heading(at("2026-11-23 12:00", 60), now),
            "Monday, 23 November"
        );
        assert_eq!(
            day_heading(at("2024-02-29 12:00", 60), now),
            "29 February 2024"
        );
    }

    #[test]
    fn the_day_is_the_readers_not_utcs() {
        // 23:30 UTC on 30 November is already 1 December in Tokyo, still 30 November in New York.
        let moment = Timestamp(
            crate::model::days_from_civil(2026, 11, 30) * DAY_MS + 23 * 3_600_000 + 30 * 60_000,
        );
        let tokyo = Local::new(moment, 9 * 60);
        let new_york = Local::new(moment, -5 * 60);
        assert_eq!(short_label(tokyo, tokyo), "08:30");
        assert_eq!(full_label(new_york), "Monday, 30 November 2026, 18:30");
        assert_eq!(tokyo.day() - new_york.day(), 1);
    }
}
