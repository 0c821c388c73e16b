//! An in-page confirmation: a modal `<dialog>` (the browser keeps focus inside it and everything
//! behind it inert; Escape cancels), never `window.confirm`.

use leptos::prelude::*;

/// Shown while `open` is true. `on_close(true)` when the reader confirms, `on_close(false)` when they
/// cancel (the button, Escape). With `type_to_confirm`, the confirm button waits until the reader has
/// typed that text (a room's name before it is deleted, say).
#[component]
pub fn ConfirmDialog(
    open: Signal<bool>,
    title: Signal<String>,
    #[prop(into)] detail: Signal<String>,
    confirm_label: &'static str,
    on_close: Callback<bool>,
    #[prop(optional, into)] type_to_confirm: Option<Signal<String>>,
) -> impl IntoView {
    let dialog = NodeRef::<leptos::html::Dialog>::new();
    let typed = RwSignal::new(String::new());
    let ready = move || type_to_confirm.is_none_or(|want| typed.with(|t| *t == want.get()));
    Effect::new(move |_| {
        let want = open.get();
        typed.set(String::new());
        if let Some(el) = dialog.get() {
            if want && !el.open() {
                let _ = el.show_modal();
            } else if !want && el.open() {
                el.close();
            }
        }
    });
    view! {
        <dialog
            node_ref=dialog
            aria-labelledby="confirm-title"
            class="w-[min(28rem,calc(100vw-2rem))] rounded-lg border border-slate-200 bg-white p-5 text-slate-900 shadow-xl backdrop:bg-slate-900/50 dark:border-slate-700 dark:bg-slate-900 dark:text-slate-100"
            // Escape: the browser fires `cancel` and closes it; say so.
            on:cancel=move |_: leptos::ev::Event| on_close.run(false)
        >
            <h2 id="confirm-title" class="text-base font-semibold">{move || title.get()}</h2>
            <p class="mt-2 text-sm text-slate-700 dark:text-slate-300">{move || detail.get()}</p>
            {type_to_confirm.map(|want| view! {
                <label class="mt-3 block text-sm">
                    {move || format!("Type “{}” to confirm", want.get())}
                    <input
                        class="mt-1 w-full rounded-md border border-slate-300 bg-white px-2 py-1 dark:border-slate-600 dark:bg-slate-950"
                        prop:value=move || typed.get()
                        on:input:target=move |ev| typed.set(ev.target().value())
                    />
                </label>
            })}
            <div class="mt-5 flex justify-end gap-2">
                <button
                    type="button"
                    class="rounded-md border border-slate-300 px-3 py-1.5 text-sm dark:border-slate-600"
                    on:click=move |_| on_close.run(false)
                    autofocus
                >
                    "Cancel"
                </button>
                <button
                    type="button"
                    class="rounded-md bg-red-700 px-3 py-1.5 text-sm font-semibold text-white disabled:opacity-60"
                    disabled=move || !ready()
                    on:click=move |_| on_close.run(true)
                >
                    {confirm_label}
                </button>
            </div>
        </dialog>
    }
}
