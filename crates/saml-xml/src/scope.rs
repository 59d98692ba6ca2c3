//! Namespace bindings in scope, as a stack with marks, with lookups that do not grow with
//! the number of bindings.
//!
//! The parser resolves every prefix against the bindings in scope, and exclusive C14N asks
//! both "what does this prefix mean here" and "what did the nearest output ancestor render
//! for it". A scan of the stack from the innermost binding is fastest for the few bindings of
//! a real message, but costs the stack's length per lookup, and an attacker can declare
//! hundreds of prefixes (tens of thousands in metadata) and then name the oldest on every
//! element and attribute (issue 17). So past [`LINEAR`] bindings, lookups go through a hash
//! map from prefix to its innermost binding; each binding remembers the one it shadows, so
//! popping restores the map in constant time per binding.
//!
//! The map is std's `HashMap` with its randomly keyed SipHash: prefixes are attacker
//! strings, and a fixed hash would let them collide.

use std::collections::HashMap;

/// String equality for short names, as an inline loop: `==` on `str` is a `memcmp` call, whose
/// fixed cost dominates for names of a few bytes.
pub(crate) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| x == y)
}

/// Up to this many bindings, a lookup scans the stack (the cost is bounded by this number).
const LINEAR: usize = 8;

const NONE: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Binding<'a, V> {
    prefix: &'a str,
    ns: V,
    /// Index of the binding of the same prefix this one shadows, or `NONE`. Only kept while
    /// the map exists.
    shadowed: u32,
}

/// A stack of (prefix, namespace) bindings, innermost last. The empty prefix is the default
/// namespace. `V` is the tree's namespace index; generic so that this module depends on
/// nothing else in the crate.
#[derive(Debug)]
pub(crate) struct Scope<'a, V> {
    stack: Vec<Binding<'a, V>>,
    /// Innermost binding of each prefix; built when the stack first outgrows [`LINEAR`].
    top: Option<HashMap<&'a str, u32>>,
    /// Work done, for [`crate::work`]: stack entries scanned plus map operations.
    pub(crate) steps: u64,
}

impl<'a, V: Copy> Scope<'a, V> {
    pub(crate) fn new() -> Self {
        Scope {
            stack: Vec::with_capacity(16),
            top: None,
            steps: 0,
        }
    }

    /// The current depth of the stack, to [`Scope::truncate`] back to.
    pub(crate) fn mark(&self) -> usize {
        self.stack.len()
    }

    /// Binds `prefix` to `ns` until the stack is truncated below this point.
    pub(crate) fn push(&mut self, prefix: &'a str, ns: V) {
        let index = self.stack.len() as u32;
        let mut shadowed = NONE;
        if let Some(top) = &mut self.top {
            self.steps += 1;
            shadowed = top.insert(prefix, index).unwrap_or(NONE);
        }
        self.stack.push(Binding {
            prefix,
            ns,
            shadowed,
        });
        if self.top.is_none() && self.stack.len() > LINEAR {
            self.build_map();
        }
    }

    fn build_map(&mut self) {
        let mut top = HashMap::with_capacity(self.stack.len() * 2);
        for (i, b) in self.stack.iter_mut().enumerate() {
            b.shadowed = top.insert(b.prefix, i as u32).unwrap_or(NONE);
        }
        self.steps += self.stack.len() as u64;
        self.top = Some(top);
    }

    /// Pops every binding pushed since `mark`.
    pub(crate) fn truncate(&mut self, mark: usize) {
        while self.stack.len() > mark {
            let Some(b) = self.stack.pop() else { break };
            if let Some(top) = &mut self.top {
                self.steps += 1;
                if b.shadowed == NONE {
                    top.remove(b.prefix);
                } else {
                    top.insert(b.prefix, b.shadowed);
                }
            }
        }
    }

    /// The innermost binding of `prefix`, if any.
    pub(crate) fn get(&mut self, prefix: &str) -> Option<V> {
        match &self.top {
            Some(top) => {
                self.steps += 1;
                let i = *top.get(prefix)?;
                self.stack.get(i as usize).map(|b| b.ns)
            }
            None => {
                for b in self.stack.iter().rev() {
                    self.steps += 1;
                    if same(b.prefix, prefix) {
                        return Some(b.ns);
                    }
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_agree_with_a_scan_before_and_after_the_map_is_built() {
        let mut s: Scope<'_, u32> = Scope::new();
        let ns = |i: u32| i;
        s.push("a", ns(1));
        let m1 = s.mark();
        s.push("a", ns(2));
        s.push("b", ns(3));
        assert_eq!(s.get("a"), Some(ns(2)));
        // Grow past the linear threshold: the map takes over.
        for i in 0..20 {
            s.push(["c", "d", "a"][i % 3], ns(10 + i as u32));
        }
        assert!(s.top.is_some());
        assert_eq!(s.get("a"), Some(ns(10 + 17)));
        assert_eq!(s.get("b"), Some(ns(3)));
        assert_eq!(s.get("zz"), None);
        s.truncate(m1 + 2);
        assert_eq!(s.get("a"), Some(ns(2)));
        assert_eq!(s.get("c"), None);
        s.truncate(m1);
        assert_eq!(s.get("a"), Some(ns(1)));
        assert_eq!(s.get("b"), None);
        s.truncate(0);
        assert_eq!(s.get("a"), None);
    }
}
