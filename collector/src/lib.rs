pub use beacon;
