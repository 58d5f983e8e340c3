use std::collections::HashMap;

pub const MAX: usize = 64;

pub struct Cache {
    map: HashMap<String, String>,
}

pub trait Store {
    fn get(&self, key: &str) -> Option<&String>;
}

impl Cache {
    pub fn new() -> Self {
        Cache { map: HashMap::new() }
    }
}
