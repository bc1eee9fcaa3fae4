//! The type registry: types by name, lazily built classes, and the module
//! table that registers types on first use.

use crate::builtins;
use crate::class::{Class, ClassBuilder, Level, ObjectClass};
use crate::composition::ChildDecls;
use crate::error::{Error, Result};
use crate::object::Object;
use crate::sync;
use crate::type_info::{is_valid_type_name, TypeInfo};
use indexmap::IndexMap;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, RwLock};
use std::thread::{self, ThreadId};

/// A registered type and, once built, its class.
pub(crate) struct TypeImpl {
    pub(crate) info: TypeInfo,
    pub(crate) class: OnceLock<Arc<Class>>,
}

/// Registers the types of a module (a plugin crate, a backend) into a registry.
pub type ModuleFn = Arc<dyn Fn(&TypeRegistry) -> Result<()> + Send + Sync>;

/// Anything that can register types: the one entry point for plugins.
///
/// A plugin crate implements this (or passes a plain function, which
/// implements it too) and the VMM calls [`TypeRegistry::install`].
pub trait Plugin {
    /// Registers the plugin's types.
    fn register(&self, types: &TypeRegistry) -> Result<()>;
}

impl<F: Fn(&TypeRegistry) -> Result<()>> Plugin for F {
    fn register(&self, types: &TypeRegistry) -> Result<()> {
        self(types)
    }
}

/// Where a lazy module is.
enum ModuleState {
    /// Not run yet.
    Pending(ModuleFn),
    /// Its function is running on this thread.
    Loading(ThreadId),
    /// Its function has run (whether or not it succeeded); a second
    /// lookup finds whatever it registered.
    Done,
}

/// The module table and who waits for which module.
#[derive(Default)]
struct Modules {
    by_type: HashMap<String, ModuleState>,
    /// The module each waiting thread waits for: to count waiters and to
    /// see a wait that would close a cycle between loading threads.
    waiting: HashMap<ThreadId, String>,
}

impl Modules {
    /// Whether the thread loading a module (`loader`) waits, directly or
    /// through other loaders, for a module that `me` is loading: then
    /// waiting for `loader` would never end.
    fn waits_for(&self, loader: ThreadId, me: ThreadId) -> bool {
        let mut t = loader;
        // Each step follows a different waiting thread, so the chain is
        // at most as long as the table of waiters.
        for _ in 0..=self.waiting.len() {
            let Some(module) = self.waiting.get(&t) else {
                return false;
            };
            match self.by_type.get(module) {
                Some(ModuleState::Loading(next)) if *next == me => return true,
                Some(ModuleState::Loading(next)) => t = *next,
                _ => return false,
            }
        }
        false
    }
}

/// A set of types by name.
///
/// Registration takes `&self`, so a registry can be shared (`Arc`) and
/// extended later, as lazy modules do. Enumeration order is registration
/// order.
pub struct TypeRegistry {
    types: RwLock<IndexMap<Arc<str>, Arc<TypeImpl>>>,
    /// Never held while a module function runs.
    modules: Mutex<Modules>,
    /// Signalled whenever a module finishes loading.
    module_loaded: Condvar,
    /// Serialises class construction, so a class_init runs exactly once.
    /// Taken only after every module a class needs has been loaded: no
    /// module function ever runs under it.
    build: Mutex<()>,
}

impl std::fmt::Debug for TypeRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypeRegistry")
            .field("types", &self.type_names())
            .finish_non_exhaustive()
    }
}

impl TypeRegistry {
    /// An empty registry: not even `object`. Most callers want
    /// [`with_builtins`](Self::with_builtins).
    pub fn empty() -> Self {
        TypeRegistry {
            types: RwLock::new(IndexMap::new()),
            modules: Mutex::new(Modules::default()),
            module_loaded: Condvar::new(),
            build: Mutex::new(()),
        }
    }

    /// A registry holding QEMU's built-in types: `object`, `interface`,
    /// `container` and `user-creatable`.
    pub fn with_builtins() -> Self {
        let r = Self::empty();
        builtins::register(&r).expect("built-in types are valid");
        r
    }

    /// Registers a type. Fails on an illegal or duplicate name, or a
    /// missing parent declaration; an unknown parent is found when the
    /// class is first built, as in QEMU (it may come from a module).
    pub fn register(&self, info: TypeInfo) -> Result<()> {
        if !is_valid_type_name(&info.name) {
            return Err(Error::IllegalTypeName(info.name));
        }
        let is_root = matches!(info.name.as_str(), "object" | "interface");
        if info.parent.is_none() && !is_root {
            return Err(Error::InvalidRegistration(format!(
                "type '{}' has no parent",
                info.name
            )));
        }
        let mut types = sync::write(&self.types);
        if types.contains_key(info.name.as_str()) {
            return Err(Error::DuplicateType(info.name));
        }
        let name: Arc<str> = info.name.as_str().into();
        types.insert(
            name,
            Arc::new(TypeImpl {
                info,
                class: OnceLock::new(),
            }),
        );
        Ok(())
    }

    /// Registers a type unless one of the same name exists already (then
    /// nothing happens): for crates that register a shared base type, such
    /// as several backend plugins each making sure `memory-backend` exists.
    pub fn register_once(&self, info: TypeInfo) -> Result<()> {
        match self.register(info) {
            Err(Error::DuplicateType(_)) => Ok(()),
            r => r,
        }
    }

    /// Runs a plugin's registration.
    pub fn install(&self, plugin: impl Plugin) -> Result<()> {
        plugin.register(self)
    }

    /// Adds a lazy module: when `type_name` is looked up and not yet
    /// registered, `register` runs once (it should register that type).
    ///
    /// Threads that look the type up while the module loads on another
    /// thread wait for it; lookups from the loading thread itself (the
    /// module looking up its own type) see what is registered so far.
    /// Adding a module for a name whose module is loading right now has no
    /// effect.
    pub fn add_module(
        &self,
        type_name: &str,
        register: impl Fn(&TypeRegistry) -> Result<()> + Send + Sync + 'static,
    ) {
        let f: ModuleFn = Arc::new(register);
        let mut modules = self.modules();
        if !matches!(
            modules.by_type.get(type_name),
            Some(ModuleState::Loading(_))
        ) {
            modules
                .by_type
                .insert(type_name.to_owned(), ModuleState::Pending(f));
        }
    }

    fn modules(&self) -> MutexGuard<'_, Modules> {
        sync::lock(&self.modules)
    }

    fn lookup_loaded(&self, name: &str) -> Option<Arc<TypeImpl>> {
        sync::read(&self.types).get(name).cloned()
    }

    /// Finds a type, loading its module if one is registered for the name
    /// (or waiting for the thread that is loading it).
    pub(crate) fn lookup(&self, name: &str) -> Result<Option<Arc<TypeImpl>>> {
        if let Some(t) = self.lookup_loaded(name) {
            return Ok(Some(t));
        }
        let me = thread::current().id();
        let mut modules = self.modules();
        let register = loop {
            match modules.by_type.get_mut(name) {
                None | Some(ModuleState::Done) => {
                    drop(modules);
                    return Ok(self.lookup_loaded(name));
                }
                Some(ModuleState::Loading(loader)) => {
                    let loader = *loader;
                    // Waiting for ourselves, or for a loader that waits for
                    // us, would never end: answer with what is registered
                    // so far, as a module looking up its own type expects.
                    if loader == me || modules.waits_for(loader, me) {
                        drop(modules);
                        return Ok(self.lookup_loaded(name));
                    }
                    modules.waiting.insert(me, name.to_owned());
                    modules = sync::wait(&self.module_loaded, modules);
                    modules.waiting.remove(&me);
                }
                Some(state @ ModuleState::Pending(_)) => {
                    match std::mem::replace(state, ModuleState::Loading(me)) {
                        ModuleState::Pending(f) => break f,
                        _ => unreachable!("matched as pending"),
                    }
                }
            }
        };
        drop(modules);
        let loading = ModuleLoad {
            registry: self,
            name,
        };
        let result = register(self);
        drop(loading);
        result?;
        Ok(self.lookup_loaded(name))
    }

    /// How many threads are waiting for the module of `type_name` to
    /// finish loading on another thread (a test seam).
    #[doc(hidden)]
    pub fn module_waiters(&self, type_name: &str) -> usize {
        self.modules()
            .waiting
            .values()
            .filter(|m| *m == type_name)
            .count()
    }

    /// Loads every pending module (QEMU does this before listing types).
    pub fn load_all_modules(&self) -> Result<()> {
        let pending: Vec<String> = self
            .modules()
            .by_type
            .iter()
            .filter(|(_, state)| matches!(state, ModuleState::Pending(_)))
            .map(|(name, _)| name.clone())
            .collect();
        for name in pending {
            self.lookup(&name)?;
        }
        Ok(())
    }

    /// Whether a type of this name is registered (modules are not loaded).
    pub fn contains(&self, name: &str) -> bool {
        self.lookup_loaded(name).is_some()
    }

    /// The registered type names, in registration order.
    pub fn type_names(&self) -> Vec<String> {
        sync::read(&self.types)
            .keys()
            .map(|k| k.to_string())
            .collect()
    }

    /// The class of a type, building it (and its ancestors) on first use.
    /// `Ok(None)` when no such type exists.
    pub fn find_class(&self, name: &str) -> Result<Option<Arc<Class>>> {
        let Some(ti) = self.lookup(name)? else {
            return Ok(None);
        };
        self.class_of(&ti).map(Some)
    }

    /// The class of a registered type, built on first use.
    fn class_of(&self, ti: &Arc<TypeImpl>) -> Result<Arc<Class>> {
        if let Some(c) = ti.class.get() {
            return Ok(c.clone());
        }
        // Module functions are user code that may build classes itself
        // (memory_backend::register does), so they must run before the
        // build lock is taken, never under it.
        self.load_ancestry(ti)?;
        let _guard = sync::lock(&self.build);
        self.build_class(ti, 0, &mut Vec::new())
    }

    /// Looks up (loading their modules) every parent, interface and
    /// declared child type that building `ti`'s class will need. Missing ones are left for
    /// `build_class` to report with its own wording.
    fn load_ancestry(&self, ti: &Arc<TypeImpl>) -> Result<()> {
        let mut seen: HashSet<String> = HashSet::new();
        let mut todo = vec![ti.clone()];
        while let Some(t) = todo.pop() {
            // A built class implies built (so loaded) ancestors.
            if t.class.get().is_some() {
                continue;
            }
            let deps = t.info.parent.iter().chain(&t.info.interfaces);
            for dep in deps.chain(&t.info.child_types) {
                if seen.insert(dep.clone()) {
                    if let Some(d) = self.lookup(dep)? {
                        todo.push(d);
                    }
                }
            }
        }
        Ok(())
    }

    /// The class of a type; an unknown name is [`Error::UnknownType`].
    pub fn class(&self, name: &str) -> Result<Arc<Class>> {
        self.find_class(name)?
            .ok_or_else(|| Error::UnknownType(name.to_owned()))
    }

    /// Builds a class and its missing ancestors; the caller holds the build
    /// lock and has loaded the ancestry ([`TypeRegistry::load_ancestry`]),
    /// so only registered types are consulted here. `owners` are the types
    /// whose `class_init` is waiting for a child class to be built: one of
    /// them asked for again is a loop of children.
    fn build_class(
        &self,
        ti: &Arc<TypeImpl>,
        depth: usize,
        owners: &mut Vec<String>,
    ) -> Result<Arc<Class>> {
        if let Some(c) = ti.class.get() {
            return Ok(c.clone());
        }
        let info = &ti.info;
        if depth > 64 {
            return Err(Error::InvalidRegistration(format!(
                "type '{}' has a parent chain that loops or is deeper than 64",
                info.name
            )));
        }
        let parent = match &info.parent {
            None => None,
            Some(p) => {
                let pti = self.lookup_loaded(p).ok_or_else(|| Error::MissingParent {
                    type_name: info.name.clone(),
                    parent: p.clone(),
                })?;
                Some(self.build_class(&pti, depth + 1, owners)?)
            }
        };
        let name: Arc<str> = info.name.as_str().into();
        let mut ancestors = vec![name.clone()];
        let mut levels = Vec::new();
        let mut properties = IndexMap::new();
        let mut data = HashMap::new();
        let mut interfaces: Vec<Vec<Arc<str>>> = Vec::new();
        if let Some(p) = &parent {
            ancestors.extend(p.ancestors.iter().cloned());
            levels = p.levels.clone();
            properties = p.properties.clone();
            data = p.data.iter().map(|(k, v)| (*k, v.clone_box())).collect();
            interfaces = p.interfaces.clone();
        }
        data.entry(std::any::TypeId::of::<ObjectClass>())
            .or_insert_with(|| Box::new(ObjectClass::default()));
        let is_interface = ancestors.iter().any(|a| &**a == "interface");
        if is_interface
            && (info.state.is_some()
                || info.instance_init.is_some()
                || info.instance_post_init.is_some()
                || !info.interfaces.is_empty())
        {
            return Err(Error::InvalidRegistration(format!(
                "interface '{}' cannot have instance state, instance hooks or interfaces",
                info.name
            )));
        }
        for iface in &info.interfaces {
            let missing = || Error::MissingInterface {
                interface: iface.clone(),
                type_name: info.parent.clone().unwrap_or_default(),
            };
            let iti = self.lookup_loaded(iface).ok_or_else(missing)?;
            let iclass = self.build_class(&iti, depth + 1, owners)?;
            if !iclass.is_interface() {
                return Err(Error::InvalidRegistration(format!(
                    "type '{}' lists '{}' as an interface, but it is not one",
                    info.name, iface
                )));
            }
            if interfaces
                .iter()
                .any(|chain| chain.iter().any(|t| **t == **iface))
            {
                continue;
            }
            // The implementing class starts from the interface's class data
            // (its default virtual methods), as QEMU copies the interface class.
            for (k, v) in &iclass.data {
                data.entry(*k).or_insert_with(|| v.clone_box());
            }
            interfaces.push(iclass.ancestors.clone());
        }
        levels.push(Level {
            state: info.state.clone(),
            instance_init: info.instance_init.clone(),
            instance_post_init: info.instance_post_init.clone(),
            finalize: info.finalize.clone(),
            children: Vec::new(),
        });
        if let Some(init) = &info.class_init {
            let inherited = levels
                .iter()
                .flat_map(|l| l.children.iter().map(|c| c.name.clone()))
                .collect();
            let mut decls = Vec::new();
            let mut resolve = |child: &str| -> Result<Arc<Class>> {
                if child == info.name || owners.iter().any(|o| o == child) {
                    let mut chain = owners.clone();
                    chain.push(info.name.clone());
                    chain.push(child.to_owned());
                    return Err(Error::InvalidRegistration(format!(
                        "children of types loop: {}",
                        chain.join(" > ")
                    )));
                }
                let cti = self
                    .lookup_loaded(child)
                    .ok_or_else(|| Error::UnknownType(child.to_owned()))?;
                owners.push(info.name.clone());
                let built = self.build_class(&cti, depth + 1, owners);
                owners.pop();
                built
            };
            let mut builder = ClassBuilder {
                name: &info.name,
                properties: &mut properties,
                data: &mut data,
                error: None,
                children: Some(ChildDecls {
                    decls: &mut decls,
                    inherited,
                    resolve: &mut resolve,
                }),
            };
            init(&mut builder)?;
            if let Some(e) = builder.error.take() {
                return Err(e);
            }
            // A property declared after a child of the same name, here or
            // in an ancestor.
            let children = levels.iter().flat_map(|l| &l.children).chain(&decls);
            if let Some(d) = children
                .into_iter()
                .find(|d| properties.contains_key(&*d.name))
            {
                return Err(Error::DuplicateProperty {
                    name: d.name.to_string(),
                    owner_type: info.name.clone(),
                });
            }
            if let Some(level) = levels.last_mut() {
                level.children = decls;
            }
        }
        let class = Arc::new(Class {
            name,
            parent,
            is_abstract: info.is_abstract || is_interface,
            ancestors,
            interfaces,
            properties,
            data,
            levels,
        });
        crate::class::check_concrete(&class)?;
        let _ = ti.class.set(class.clone());
        Ok(ti.class.get().cloned().unwrap_or(class))
    }

    /// QEMU's `object_class_foreach` as a list: every type whose class
    /// builds, optionally only those that cast to `implements`, abstract
    /// ones only when asked. Registration order.
    pub fn classes(
        &self,
        implements: Option<&str>,
        include_abstract: bool,
    ) -> Result<Vec<Arc<Class>>> {
        let impls: Vec<Arc<TypeImpl>> = sync::read(&self.types).values().cloned().collect();
        let mut out = Vec::new();
        for ti in impls {
            let class = self.class_of(&ti)?;
            if class.is_abstract && !include_abstract {
                continue;
            }
            if let Some(i) = implements {
                if !class.is_a(i) {
                    continue;
                }
            }
            out.push(class);
        }
        Ok(out)
    }

    /// Creates an object that is not part of any tree. Its link properties
    /// cannot resolve paths; use [`ObjectTree`](crate::ObjectTree) for that.
    pub fn new_object(&self, type_name: &str) -> Result<Object> {
        let class = self.class(type_name)?;
        Object::instantiate(class, None)
    }
}

/// Marks a module loaded when its function returns or unwinds, and wakes
/// the threads waiting for it.
struct ModuleLoad<'a> {
    registry: &'a TypeRegistry,
    name: &'a str,
}

impl Drop for ModuleLoad<'_> {
    fn drop(&mut self) {
        self.registry
            .modules()
            .by_type
            .insert(self.name.to_owned(), ModuleState::Done);
        self.registry.module_loaded.notify_all();
    }
}

impl Default for TypeRegistry {
    fn default() -> Self {
        Self::with_builtins()
    }
}
