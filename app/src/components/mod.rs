pub mod attachments;
pub mod avatar;
pub mod dialog;
pub mod emoji_picker;
pub mod form;
pub mod layout;
pub mod search_box;
pub mod time;
