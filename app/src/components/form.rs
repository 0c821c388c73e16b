//! Form building blocks: a labelled field with its error, a form-level message, a submit button.

use crate::error::AppError;
use leptos::html::ElementType;
use leptos::prelude::*;
use leptos::wasm_bindgen::JsCast;

/// The text of an `<input>` or a `<textarea>`.
pub trait TextControl {
    fn text(&self) -> String;
    fn set_text(&self, text: &str);
}

impl TextControl for web_sys::HtmlInputElement {
    fn text(&self) -> String {
        self.value()
    }
    fn set_text(&self, text: &str) {
        self.set_value(text)
    }
}

impl TextControl for web_sys::HtmlTextAreaElement {
    fn text(&self) -> String {
        self.value()
    }
    fn set_text(&self, text: &str) {
        self.set_value(text)
    }
}

/// Keeps `value` and a text control in step without wiping what a person typed before the page
/// hydrated (a bound value would be written over the typed text as hydration takes the control). The
/// control renders `value` as its initial attribute and sets `value` on input; this takes the text
/// the control holds once the app is live, then writes later changes of `value` (a form cleared after
/// sending) into the control.
pub fn keep_typed<E>(node: NodeRef<E>, value: RwSignal<String>)
where
    E: ElementType,
    E::Output: TextControl + JsCast + Clone + 'static,
{
    // Effects run only in the browser, after hydration.
    Effect::new(move |adopted: Option<bool>| {
        let wanted = value.get();
        let Some(control) = node.get() else {
            return false;
        };
        let typed = control.text();
        if adopted != Some(true) && !typed.is_empty() {
            if typed != wanted {
                value.set(typed);
            }
        } else if typed != wanted {
            control.set_text(&wanted);
        }
        true
    });
}

/// What a plain form post to the server function at `path` (made before the app hydrated, or with no
/// WebAssembly at all) was refused with: the server sends the browser back to the form with the error
/// in the address.
pub fn refused_form_post(path: &str) -> Option<AppError> {
    let query = leptos_router::hooks::use_query_map();
    query.with_untracked(|q| {
        (q.get("__path").as_deref() == Some(path))
            .then(|| q.get("__err"))
            .flatten()
            .map(|err| leptos::server_fn::error::ServerFnUrlError::<AppError>::decode_err(&err))
    })
}

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
    let control = NodeRef::<leptos::html::Input>::new();
    keep_typed(control, value);
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
                node_ref=control
                value=value.get_untracked()
                on:input:target=move |ev| value.set(ev.target().value())
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
    /// The section's own `id`, for links to it (`/rooms#new-room`).
    #[prop(optional)]
    anchor: Option<&'static str>,
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
            id=anchor
            aria-labelledby=labelled_by
            class="rounded-lg border border-slate-200 bg-white p-6 shadow-sm dark:border-slate-800 dark:bg-slate-900"
        >
            <h2 id=heading_id class="mb-4 text-lg font-semibold">{title}</h2>
            {children()}
        </section>
    }
}
