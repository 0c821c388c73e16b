//! Form building blocks: a labelled field with its error, a form-level message, a submit button.

use crate::error::AppError;
use leptos::prelude::*;

/// The error message for field `name`, if the last answer (or the local check) blamed it.
pub fn field_error(
    error: RwSignal<Option<AppError>>,
    name: &'static str,
) -> Signal<Option<String>> {
    Signal::derive(move || error.with(|e| e.as_ref().and_then(|e| e.for_field(name))))
}

#[component]
pub fn TextField(
    label: &'static str,
    /// The form field name, which is also the server function's argument name.
    name: &'static str,
    value: RwSignal<String>,
    #[prop(into)] error: Signal<Option<String>>,
    #[prop(default = "text")] kind: &'static str,
    #[prop(default = "off")] autocomplete: &'static str,
    #[prop(optional)] hint: &'static str,
    #[prop(optional)] maxlength: Option<usize>,
) -> impl IntoView {
    let id = format!("field-{name}");
    let hint_id = format!("{id}-hint");
    let error_id = format!("{id}-error");
    let described_by = {
        let (hint_id, error_id) = (hint_id.clone(), error_id.clone());
        move || {
            let mut ids = Vec::new();
            if !hint.is_empty() {
                ids.push(hint_id.clone());
            }
            if error.get().is_some() {
                ids.push(error_id.clone());
            }
            ids.join(" ")
        }
    };
    view! {
        <div class="space-y-1">
            <label for=id.clone() class="block text-sm font-medium text-slate-700 dark:text-slate-200">
                {label}
            </label>
            <input
                id=id
                name=name
                type=kind
                autocomplete=autocomplete
                maxlength=maxlength.map(|m| m.to_string())
                bind:value=value
                aria-invalid=move || error.get().is_some().to_string()
                aria-describedby=described_by
                class="block w-full rounded-md border border-slate-300 bg-white px-3 py-2 text-sm shadow-sm focus:border-indigo-500 focus:outline-none focus:ring-2 focus:ring-indigo-500/40 aria-[invalid=true]:border-red-500 dark:border-slate-700 dark:bg-slate-900"
            />
            {(!hint.is_empty())
                .then(|| {
                    view! {
                        <p id=hint_id class="text-xs text-slate-500 dark:text-slate-400">
                            {hint}
                        </p>
                    }
                })}
            {move || {
                error
                    .get()
                    .map(|message| {
                        view! {
                            <p id=error_id.clone() class="text-sm text-red-600 dark:text-red-400">
                                {message}
                            </p>
                        }
                    })
            }}
        </div>
    }
}

/// Errors that belong to the form as a whole ("Wrong username or password.", lockouts, outages).
#[component]
pub fn FormError(error: RwSignal<Option<AppError>>) -> impl IntoView {
    move || {
        error.with(|e| e.as_ref().and_then(AppError::for_form)).map(|message| {
            view! {
                <div
                    role="alert"
                    class="rounded-md border border-red-200 bg-red-50 px-3 py-2 text-sm text-red-800 dark:border-red-900 dark:bg-red-950 dark:text-red-200"
                >
                    {message}
                </div>
            }
        })
    }
}

/// A success or information message.
#[component]
pub fn Notice(#[prop(into)] message: Signal<Option<String>>) -> impl IntoView {
    move || {
        message.get().map(|message| {
            view! {
                <div
                    role="status"
                    class="rounded-md border border-emerald-200 bg-emerald-50 px-3 py-2 text-sm text-emerald-800 dark:border-emerald-900 dark:bg-emerald-950 dark:text-emerald-200"
                >
                    {message}
                </div>
            }
        })
    }
}

#[component]
pub fn SubmitButton(
    label: &'static str,
    busy_label: &'static str,
    busy: RwSignal<bool>,
) -> impl IntoView {
    view! {
        <button
            type="submit"
            disabled=move || busy.get()
            class="inline-flex w-full justify-center rounded-md bg-indigo-600 px-4 py-2 text-sm font-semibold text-white shadow-sm hover:bg-indigo-500 focus:outline-none focus:ring-2 focus:ring-indigo-500/50 disabled:opacity-60 sm:w-auto"
        >
            {move || if busy.get() { busy_label } else { label }}
        </button>
    }
}

/// The card that holds an account form. With `region`, it is also a landmark named by its title
/// (left off where the title repeats a field's label, which would then name two things).
#[component]
pub fn Card(
    title: &'static str,
    #[prop(optional)] region: bool,
    children: Children,
) -> impl IntoView {
    let heading_id = region.then(|| {
        let slug: String = title
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        format!("card-{slug}")
    });
    let labelled_by = heading_id.clone();
    view! {
        <section
            aria-labelledby=labelled_by
            class="rounded-lg border border-slate-200 bg-white p-6 shadow-sm dark:border-slate-800 dark:bg-slate-900"
        >
            <h2 id=heading_id class="mb-4 text-lg font-semibold">{title}</h2>
            {children()}
        </section>
    }
}
