//! The CUDA device: context and stream, NVRTC modules cached by source, a pooled
//! device allocator, pinned staging for large uploads, and the kernel launches.
//!
//! Every entry point is guarded: [`GpuDevice::open`] first checks that the driver and
//! NVRTC libraries can be loaded (`is_culib_present`), because cudarc's dynamic loading
//! panics rather than returning an error when they are absent; and the callers in
//! [`crate::kernels`] run every device call inside `catch_unwind` as a second line of
//! defence. Any error here becomes a [`GpuError`] and the caller falls back to the CPU.
//!
//! This is the only module with `unsafe` code: reading the library probes and launching
//! kernels (whose argument lists cudarc cannot check against the CUDA signatures).

#![allow(unsafe_code)]

use crate::codegen::CalcProgram;
use crate::cuda;
use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array};
use arrow::buffer::{Buffer, MutableBuffer};
use cudarc::driver::{
    CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, DevicePtr, LaunchConfig,
    PinnedHostSlice, PushKernelArg,
};
use cudarc::nvrtc::{compile_ptx_with_opts, CompileOptions};
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

/// Uploads at least this large are staged through a pinned host buffer (to be tuned
/// with `bench/gpu`: pinned staging costs a host copy and pays off for large copies).
pub const PINNED_MIN_BYTES: usize = 4 << 20;

/// Device bytes the pool keeps for reuse at most; buffers returned beyond it are freed.
pub const POOL_MAX_BYTES: usize = 2 << 30;

/// Threads per block of every launch.
const BLOCK: u32 = 256;

/// A GPU failure; every one of them sends the work back to the CPU.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GpuError {
    /// `libcuda.so` cannot be loaded (no NVIDIA driver).
    #[error("no CUDA driver (libcuda.so not found)")]
    NoDriver,
    /// The NVRTC library cannot be loaded.
    #[error("no NVRTC library (libnvrtc.so not found)")]
    NoNvrtc,
    /// The driver works but reports no device (or not the one asked for).
    #[error("no CUDA device: {0}")]
    NoDevice(String),
    /// A driver call failed.
    #[error("CUDA driver error: {0}")]
    Driver(String),
    /// NVRTC could not compile a kernel (a bug in the generated source).
    #[error("NVRTC compile error: {0}")]
    Compile(String),
    /// A hash table ran out of slots.
    #[error("GPU hash table full")]
    TableFull,
    /// Integer overflow in a kernel: the CPU recomputes to raise the exact error.
    #[error("integer overflow on the GPU")]
    Overflow,
    /// cudarc panicked (caught at the boundary).
    #[error("CUDA call panicked: {0}")]
    Panic(String),
    /// The device path is not available for this input.
    #[error("{0}")]
    Unsupported(String),
}

impl GpuError {
    /// The reason class counted in the fallback metric.
    pub fn reason(&self) -> &'static str {
        match self {
            GpuError::NoDriver => "no-driver",
            GpuError::NoNvrtc => "no-nvrtc",
            GpuError::NoDevice(_) => "no-device",
            GpuError::Driver(_) => "driver",
            GpuError::Compile(_) => "compile",
            GpuError::TableFull => "table-full",
            GpuError::Overflow => "overflow",
            GpuError::Panic(_) => "panic",
            GpuError::Unsupported(_) => "unsupported",
        }
    }
}

fn drv(e: impl std::fmt::Debug) -> GpuError {
    GpuError::Driver(format!("{e:?}"))
}

/// True when both the CUDA driver and NVRTC libraries can be loaded; the reason when not.
pub fn libraries_present() -> Result<(), GpuError> {
    // SAFETY: these only try to dlopen the library (and cache the handle); they do not
    // call into it.
    let driver = unsafe { cudarc::driver::sys::is_culib_present() };
    if !driver {
        return Err(GpuError::NoDriver);
    }
    // SAFETY: as above, for libnvrtc.
    let nvrtc = unsafe { cudarc::nvrtc::sys::is_culib_present() };
    if !nvrtc {
        return Err(GpuError::NoNvrtc);
    }
    Ok(())
}

/// A buffer on the device, for column data in Arrow layout.
pub(crate) struct DevBuf {
    slice: CudaSlice<u8>,
    /// Bytes in use (the slice may be larger: pool size classes).
    len: usize,
}

/// An uploaded column: values and optional validity bitmap, with bit offsets.
pub(crate) struct DevColumn {
    values: DevBuf,
    value_bit_offset: u64,
    validity: Option<(DevBuf, u64)>,
}

/// Compiled modules by source hash, each with its source.
type ModuleCache = HashMap<u64, Vec<(String, Arc<CudaModule>)>>;

/// One CUDA device, opened once per process and shared by every worker thread.
pub struct GpuDevice {
    ctx: Arc<CudaContext>,
    /// `--gpu-architecture=compute_XY` for NVRTC, from the device's capability.
    arch: String,
    stream: Arc<CudaStream>,
    name: String,
    /// Compiled modules by source hash (the source is kept to rule out collisions).
    modules: Mutex<ModuleCache>,
    /// Free device buffers by size class.
    pool: Mutex<BTreeMap<usize, Vec<CudaSlice<u8>>>>,
    pool_bytes: Mutex<usize>,
    /// Pinned staging buffers by size class.
    pinned: Mutex<BTreeMap<usize, Vec<PinnedHostSlice<u8>>>>,
    /// Launch the whole fused stage on one stream at a time.
    launch: Mutex<()>,
}

impl std::fmt::Debug for GpuDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuDevice")
            .field("name", &self.name)
            .finish()
    }
}

/// The size class of a request: powers of two up to 1 MiB, then whole MiBs.
fn size_class(bytes: usize) -> usize {
    let bytes = bytes.max(256);
    if bytes <= 1 << 20 {
        bytes.next_power_of_two()
    } else {
        bytes.div_ceil(1 << 20) << 20
    }
}

fn grid(n: usize) -> LaunchConfig {
    let blocks = n.div_ceil(BLOCK as usize).clamp(1, 1 << 16) as u32;
    LaunchConfig {
        grid_dim: (blocks, 1, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    }
}

impl GpuDevice {
    /// Opens device `ordinal` (guarded: no driver → an error, never a panic).
    pub fn open(ordinal: usize) -> Result<GpuDevice, GpuError> {
        libraries_present()?;
        let count = CudaContext::device_count().map_err(drv)?;
        if count <= 0 || ordinal >= count as usize {
            return Err(GpuError::NoDevice(format!(
                "{count} devices, asked for #{ordinal}"
            )));
        }
        let ctx = CudaContext::new(ordinal).map_err(drv)?;
        let name = ctx.name().map_err(drv)?;
        let stream = ctx.default_stream();
        let (major, minor) = ctx.compute_capability().map_err(drv)?;
        Ok(GpuDevice {
            ctx,
            arch: format!("--gpu-architecture=compute_{major}{minor}"),
            stream,
            name,
            modules: Mutex::new(HashMap::new()),
            pool: Mutex::new(BTreeMap::new()),
            pool_bytes: Mutex::new(0),
            pinned: Mutex::new(BTreeMap::new()),
            launch: Mutex::new(()),
        })
    }

    /// The device's name (`NVIDIA H100 80GB HBM3`, …).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The kernel `entry` of `source`, compiling it with NVRTC on first use.
    fn function(&self, source: &str, entry: &str) -> Result<CudaFunction, GpuError> {
        let mut h = DefaultHasher::new();
        source.hash(&mut h);
        let key = h.finish();
        let module = {
            let mut modules = self.modules.lock().map_err(|_| drv("poisoned"))?;
            let bucket = modules.entry(key).or_default();
            match bucket.iter().find(|(s, _)| s == source) {
                Some((_, m)) => Arc::clone(m),
                None => {
                    let opts = CompileOptions {
                        fmad: Some(false),
                        options: vec![self.arch.clone()],
                        ..Default::default()
                    };
                    let ptx = compile_ptx_with_opts(source, opts)
                        .map_err(|e| GpuError::Compile(format!("{e:?}")))?;
                    let m = self.ctx.load_module(ptx).map_err(drv)?;
                    bucket.push((source.to_string(), Arc::clone(&m)));
                    m
                }
            }
        };
        module.load_function(entry).map_err(drv)
    }

    /// A device buffer of at least `bytes` bytes (contents undefined), from the pool.
    fn alloc(&self, bytes: usize) -> Result<DevBuf, GpuError> {
        let class = size_class(bytes);
        if let Some(slice) = self
            .pool
            .lock()
            .ok()
            .and_then(|mut p| p.get_mut(&class).and_then(Vec::pop))
        {
            if let Ok(mut b) = self.pool_bytes.lock() {
                *b = b.saturating_sub(class);
            }
            return Ok(DevBuf { slice, len: bytes });
        }
        // SAFETY: the memory is uninitialized; every kernel and copy below writes a
        // buffer's first `len` bytes before anything reads them.
        let slice = unsafe { self.stream.alloc::<u8>(class) }.map_err(drv)?;
        Ok(DevBuf { slice, len: bytes })
    }

    /// Returns a buffer to the pool (or frees it when the pool is full).
    fn free(&self, buf: DevBuf) {
        let class = buf.slice.len();
        let Ok(mut total) = self.pool_bytes.lock() else {
            return;
        };
        if *total + class > POOL_MAX_BYTES {
            return;
        }
        if let Ok(mut p) = self.pool.lock() {
            p.entry(class).or_default().push(buf.slice);
            *total += class;
        }
    }

    fn free_column(&self, c: DevColumn) {
        self.free(c.values);
        if let Some((v, _)) = c.validity {
            self.free(v);
        }
    }

    /// Copies `bytes` to a new device buffer; large copies go through pinned memory.
    fn upload(&self, bytes: &[u8]) -> Result<DevBuf, GpuError> {
        let mut buf = self.alloc(bytes.len())?;
        if bytes.is_empty() {
            return Ok(buf);
        }
        if bytes.len() >= PINNED_MIN_BYTES {
            let class = buf.slice.len();
            let staged = self
                .pinned
                .lock()
                .ok()
                .and_then(|mut p| p.get_mut(&class).and_then(Vec::pop));
            let mut pinned = match staged {
                Some(p) => p,
                // SAFETY: uninitialized pinned memory; the first `bytes.len()` bytes
                // are written right below, and the tail is only ever copied to the
                // tail of a device buffer nobody reads.
                None => unsafe { self.ctx.alloc_pinned::<u8>(class) }.map_err(drv)?,
            };
            pinned.as_mut_slice().map_err(drv)?[..bytes.len()].copy_from_slice(bytes);
            self.stream
                .memcpy_htod(&pinned, &mut buf.slice)
                .map_err(drv)?;
            self.stream.synchronize().map_err(drv)?;
            if let Ok(mut p) = self.pinned.lock() {
                let list = p.entry(class).or_default();
                if list.len() < 2 {
                    list.push(pinned);
                }
            }
        } else {
            let mut view = buf.slice.slice_mut(0..bytes.len());
            self.stream.memcpy_htod(bytes, &mut view).map_err(drv)?;
        }
        Ok(buf)
    }

    /// Copies the first `bytes` bytes of a device buffer into a 64-byte aligned
    /// Arrow buffer.
    fn download(&self, buf: &DevBuf, bytes: usize) -> Result<Buffer, GpuError> {
        let mut host = MutableBuffer::from_len_zeroed(bytes);
        if bytes > 0 {
            let view = buf.slice.slice(0..bytes);
            self.stream
                .memcpy_dtoh(&view, host.as_slice_mut())
                .map_err(drv)?;
        }
        self.stream.synchronize().map_err(drv)?;
        Ok(host.into())
    }

    fn ptr(&self, buf: &DevBuf) -> u64 {
        let (p, _sync) = buf.slice.device_ptr(&self.stream);
        p
    }

    /// Uploads a fixed-width or boolean Arrow column.
    fn upload_column(&self, array: &ArrayRef) -> Result<DevColumn, GpuError> {
        let (values, value_bit_offset) = match array.as_boolean_opt() {
            Some(b) => (
                self.upload(b.values().inner().as_slice())?,
                b.values().offset() as u64,
            ),
            None => {
                let data = array.to_data();
                let width = match data.data_type().primitive_width() {
                    Some(w) => w,
                    None => {
                        return Err(GpuError::Unsupported(format!(
                            "column of type {}",
                            data.data_type()
                        )))
                    }
                };
                let buffer = data
                    .buffers()
                    .first()
                    .ok_or_else(|| drv("no values buffer"))?;
                let start = data.offset() * width;
                let end = start + data.len() * width;
                let slice = buffer
                    .as_slice()
                    .get(start..end)
                    .ok_or_else(|| drv("values buffer too short"))?;
                (self.upload(slice)?, 0)
            }
        };
        let validity = match array.nulls() {
            Some(n) if n.null_count() > 0 => {
                Some((self.upload(n.buffer().as_slice())?, n.offset() as u64))
            }
            _ => None,
        };
        Ok(DevColumn {
            values,
            value_bit_offset,
            validity,
        })
    }

    fn launch_cfg_checked(n: usize) -> Result<(i64, LaunchConfig), GpuError> {
        let rows = i64::try_from(n).map_err(|_| drv("batch too large"))?;
        Ok((rows, grid(n)))
    }

    /// Runs a generated `Calc` kernel: the keep mask (one byte per row) and, per computed
    /// projection, its values and validity (one byte per row) as host buffers.
    pub(crate) fn run_calc(
        &self,
        program: &CalcProgram,
        columns: &[ArrayRef],
        rows: usize,
    ) -> Result<(BooleanArray, Vec<(Buffer, Buffer)>), GpuError> {
        let _one = self.launch.lock().map_err(|_| drv("poisoned"))?;
        let func = self.function(&program.source, crate::codegen::CALC_KERNEL)?;
        let mut uploaded = Vec::with_capacity(program.columns.len());
        let mut params: Vec<u64> = Vec::with_capacity(4 * program.columns.len());
        let result = (|| {
            for &c in &program.columns {
                let array = columns
                    .get(c)
                    .ok_or_else(|| drv(format!("no column {c}")))?;
                let col = self.upload_column(array)?;
                params.push(self.ptr(&col.values));
                params.push(col.value_bit_offset);
                match &col.validity {
                    Some((v, off)) => {
                        params.push(self.ptr(v));
                        params.push(*off);
                    }
                    None => params.extend([0, 0]),
                }
                uploaded.push(col);
            }
            params.push(0); // never empty
            let cols = self.upload(&u64_bytes(&params))?;
            let keep = self.alloc(rows.max(1))?;
            let mut outs_host = Vec::new();
            let mut outs = Vec::new();
            for &(_, ty) in &program.outputs {
                let width = match ty {
                    sluice_catalogs::SqlType::Boolean => 1,
                    sluice_catalogs::SqlType::Int | sluice_catalogs::SqlType::Date => 4,
                    _ => 8,
                };
                let v = self.alloc((rows * width).max(1))?;
                let m = self.alloc(rows.max(1))?;
                outs_host.push(self.ptr(&v));
                outs_host.push(self.ptr(&m));
                outs.push((v, m, width));
            }
            outs_host.push(0);
            let outs_dev = self.upload(&u64_bytes(&outs_host))?;
            let err = self.upload(&[0u8; 4])?;
            let (n, cfg) = Self::launch_cfg_checked(rows)?;
            let mut launch = self.stream.launch_builder(&func);
            launch
                .arg(&cols.slice)
                .arg(&n)
                .arg(&keep.slice)
                .arg(&outs_dev.slice)
                .arg(&err.slice);
            // SAFETY: the arguments match `sluice_calc(const u64* cols, i64 n, u8* keep,
            // const u64* outs, int* err)`; `cols` holds, per slot, pointers to uploaded
            // buffers of at least `n` values (or bits) and `outs` pointers to buffers of
            // `n` elements of the output's width; all stay alive until the
            // synchronizing downloads below.
            unsafe { launch.launch(cfg) }.map_err(drv)?;
            let err_host = self.download(&err, 4)?;
            let failed = err_host.as_slice().iter().any(|&b| b != 0);
            let mut results = Vec::new();
            let keep_host = if failed {
                None
            } else {
                let k = self.download(&keep, rows)?;
                for (v, m, width) in &outs {
                    results.push((self.download(v, rows * width)?, self.download(m, rows)?));
                }
                Some(k)
            };
            for b in [cols, keep, outs_dev, err] {
                self.free(b);
            }
            for (v, m, _) in outs {
                self.free(v);
                self.free(m);
            }
            match keep_host {
                None => Err(GpuError::Overflow),
                Some(k) => Ok((bytes_to_mask(&k, rows), results)),
            }
        })();
        for c in uploaded {
            self.free_column(c);
        }
        result
    }

    fn fill_u64(&self, buf: &DevBuf, n: usize, value: u64) -> Result<(), GpuError> {
        let f = self.function(cuda::SOURCE, cuda::FILL_U64)?;
        let (rows, cfg) = Self::launch_cfg_checked(n)?;
        let mut l = self.stream.launch_builder(&f);
        l.arg(&buf.slice).arg(&rows).arg(&value);
        // SAFETY: `sl_fill_u64(u64* p, i64 n, u64 v)`; `buf` holds at least `n` u64s.
        unsafe { l.launch(cfg) }.map_err(drv)?;
        Ok(())
    }

    /// GPU group-by accumulation: per group the key, the rows, and per argument the
    /// count, exact sum, min and max. `args[a]` is `None` for `COUNT(*)`, `Some((ints,
    /// false))` for an integer argument and `Some((raw, true))` for a `COUNT(x)` of any
    /// type (only its validity is read).
    pub(crate) fn run_group_by(
        &self,
        keys: &Int64Array,
        args: &[Option<(ArrayRef, bool)>],
    ) -> Result<crate::groupby::GroupStates, GpuError> {
        let _one = self.launch.lock().map_err(|_| drv("poisoned"))?;
        let n = keys.len();
        let mut cap = (2 * n).clamp(1024, 1 << 22).next_power_of_two();
        loop {
            match self.group_by_with_capacity(keys, args, cap) {
                Err(GpuError::TableFull) if cap < 4 * n => cap *= 4,
                other => return other,
            }
        }
    }

    fn group_by_with_capacity(
        &self,
        keys: &Int64Array,
        args: &[Option<(ArrayRef, bool)>],
        cap: usize,
    ) -> Result<crate::groupby::GroupStates, GpuError> {
        use crate::groupby::{AggState, GroupStates};
        let n = keys.len();
        let slots = cap + 2;
        let key_array: ArrayRef = Arc::new(keys.clone());
        let key_col = self.upload_column(&key_array)?;
        let table = self.alloc(slots * 8)?;
        self.fill_u64(&table, slots, i64::MIN as u64)?;
        let slot = self.alloc(n.max(1) * 8)?;
        let rows = self.alloc(slots * 8)?;
        self.fill_u64(&rows, slots, 0)?;
        let full = self.upload(&[0u8; 4])?;
        let insert = self.function(cuda::SOURCE, cuda::GB_INSERT)?;
        let (nn, cfg) = Self::launch_cfg_checked(n)?;
        let (vptr, voff) = validity_arg(self, &key_col);
        let cap_i = cap as i64;
        let mut l = self.stream.launch_builder(&insert);
        l.arg(&key_col.values.slice)
            .arg(&vptr)
            .arg(&voff)
            .arg(&nn)
            .arg(&table.slice)
            .arg(&cap_i)
            .arg(&slot.slice)
            .arg(&rows.slice)
            .arg(&full.slice);
        // SAFETY: matches `sl_gb_insert(const i64* keys, const u8* valid, u64 voff, i64 n,
        // i64* table, i64 cap, i64* slot, u64* rows, int* full)`; `table` and `rows` hold
        // `cap + 2` entries, `slot` `n`, `keys` `n` values (validity pointer 0 or a
        // bitmap covering `voff + n` bits).
        unsafe { l.launch(cfg) }.map_err(drv)?;
        let full_host = self.download(&full, 4)?;
        if full_host.as_slice().iter().any(|&b| b != 0) {
            for b in [table, slot, rows, full] {
                self.free(b);
            }
            self.free_column(key_col);
            return Err(GpuError::TableFull);
        }
        let mut states = Vec::with_capacity(args.len());
        for arg in args {
            let mut st = vec![AggState::empty(); slots];
            if let Some((array, count_only)) = arg {
                let col = self.upload_column(array)?;
                let (vp, vo) = validity_arg(self, &col);
                let cnt = self.alloc(slots * 8)?;
                self.fill_u64(&cnt, slots, 0)?;
                if *count_only {
                    let f = self.function(cuda::SOURCE, cuda::GB_COUNT)?;
                    let mut l = self.stream.launch_builder(&f);
                    l.arg(&slot.slice)
                        .arg(&vp)
                        .arg(&vo)
                        .arg(&nn)
                        .arg(&cnt.slice);
                    // SAFETY: matches `sl_gb_count(const i64* slot, const u8* valid, u64
                    // voff, i64 n, u64* cnt)`; `cnt` holds `cap + 2` counters.
                    unsafe { l.launch(cfg) }.map_err(drv)?;
                    let c = u64s(&self.download(&cnt, slots * 8)?);
                    for (s, c) in st.iter_mut().zip(c) {
                        s.count = c;
                    }
                    self.free(cnt);
                } else {
                    let [lo, hi, mn, mx] = [
                        self.alloc(slots * 8)?,
                        self.alloc(slots * 8)?,
                        self.alloc(slots * 8)?,
                        self.alloc(slots * 8)?,
                    ];
                    self.fill_u64(&lo, slots, 0)?;
                    self.fill_u64(&hi, slots, 0)?;
                    self.fill_u64(&mn, slots, i64::MAX as u64)?;
                    self.fill_u64(&mx, slots, i64::MIN as u64)?;
                    let f = self.function(cuda::SOURCE, cuda::GB_ACCUMULATE)?;
                    let mut l = self.stream.launch_builder(&f);
                    l.arg(&slot.slice)
                        .arg(&col.values.slice)
                        .arg(&vp)
                        .arg(&vo)
                        .arg(&nn)
                        .arg(&cnt.slice)
                        .arg(&lo.slice)
                        .arg(&hi.slice)
                        .arg(&mn.slice)
                        .arg(&mx.slice);
                    // SAFETY: matches `sl_gb_accumulate(const i64* slot, const i64* vals,
                    // const u8* valid, u64 voff, i64 n, u64* cnt, u64* lo, u64* hi, i64*
                    // mn, i64* mx)`; the argument column holds `n` i64 values; every
                    // state array holds `cap + 2` entries.
                    unsafe { l.launch(cfg) }.map_err(drv)?;
                    let c = u64s(&self.download(&cnt, slots * 8)?);
                    let lo_h = u64s(&self.download(&lo, slots * 8)?);
                    let hi_h = u64s(&self.download(&hi, slots * 8)?);
                    let mn_h = u64s(&self.download(&mn, slots * 8)?);
                    let mx_h = u64s(&self.download(&mx, slots * 8)?);
                    for (i, s) in st.iter_mut().enumerate() {
                        s.count = c[i];
                        s.sum = i128::from(hi_h[i] as i64) * (1i128 << 32) + i128::from(lo_h[i]);
                        s.min = mn_h[i] as i64;
                        s.max = mx_h[i] as i64;
                    }
                    for b in [cnt, lo, hi, mn, mx] {
                        self.free(b);
                    }
                }
                self.free_column(col);
            }
            states.push(st);
        }
        let table_h = u64s(&self.download(&table, slots * 8)?);
        let rows_h = u64s(&self.download(&rows, slots * 8)?);
        for b in [table, slot, rows, full] {
            self.free(b);
        }
        self.free_column(key_col);
        let mut out = GroupStates {
            keys: vec![],
            rows: vec![],
            states: vec![vec![]; args.len()],
        };
        for s in 0..slots {
            if rows_h[s] == 0 {
                continue;
            }
            out.keys.push(match s {
                s if s == cap => Some(i64::MIN),
                s if s == cap + 1 => None,
                s => Some(table_h[s] as i64),
            });
            out.rows.push(rows_h[s]);
            for (a, st) in states.iter().enumerate() {
                out.states[a].push(st[s]);
            }
        }
        Ok(out)
    }

    /// GPU join probe: `(probe row, build row)` pairs, in no particular order.
    pub(crate) fn run_join_probe(
        &self,
        build: &Int64Array,
        probe: &Int64Array,
    ) -> Result<(Vec<u32>, Vec<u32>), GpuError> {
        let _one = self.launch.lock().map_err(|_| drv("poisoned"))?;
        let cap = (2 * build.len()).max(1024).next_power_of_two();
        let b: ArrayRef = Arc::new(build.clone());
        let p: ArrayRef = Arc::new(probe.clone());
        let bcol = self.upload_column(&b)?;
        let pcol = self.upload_column(&p)?;
        let tkey = self.alloc(cap * 8)?;
        let trow = self.alloc(cap * 8)?;
        self.fill_u64(&trow, cap, u64::MAX)?;
        let full = self.upload(&[0u8; 4])?;
        let cap_i = cap as i64;
        let (bn, bcfg) = Self::launch_cfg_checked(build.len())?;
        let (bvp, bvo) = validity_arg(self, &bcol);
        let f = self.function(cuda::SOURCE, cuda::JOIN_BUILD)?;
        let mut l = self.stream.launch_builder(&f);
        l.arg(&bcol.values.slice)
            .arg(&bvp)
            .arg(&bvo)
            .arg(&bn)
            .arg(&tkey.slice)
            .arg(&trow.slice)
            .arg(&cap_i)
            .arg(&full.slice);
        // SAFETY: matches `sl_join_build(const i64* keys, const u8* valid, u64 voff, i64 n,
        // i64* table_key, i64* table_row, i64 cap, int* full)`; both tables hold `cap`.
        unsafe { l.launch(bcfg) }.map_err(drv)?;
        if self.download(&full, 4)?.as_slice().iter().any(|&x| x != 0) {
            return Err(GpuError::TableFull);
        }
        let (pn, pcfg) = Self::launch_cfg_checked(probe.len())?;
        let (pvp, pvo) = validity_arg(self, &pcol);
        let counts = self.alloc(probe.len().max(1) * 8)?;
        let f = self.function(cuda::SOURCE, cuda::JOIN_COUNT)?;
        let mut l = self.stream.launch_builder(&f);
        l.arg(&pcol.values.slice)
            .arg(&pvp)
            .arg(&pvo)
            .arg(&pn)
            .arg(&tkey.slice)
            .arg(&trow.slice)
            .arg(&cap_i)
            .arg(&counts.slice);
        // SAFETY: matches `sl_join_count(const i64* keys, const u8* valid, u64 voff, i64 n,
        // const i64* table_key, const i64* table_row, i64 cap, u64* counts)`; `counts`
        // holds `n` entries.
        unsafe { l.launch(pcfg) }.map_err(drv)?;
        let counts_h = u64s(&self.download(&counts, probe.len() * 8)?);
        let mut offsets = Vec::with_capacity(counts_h.len());
        let mut total = 0u64;
        for c in &counts_h {
            offsets.push(total);
            total += c;
        }
        let total = usize::try_from(total).map_err(|_| drv("too many matches"))?;
        let offs = self.upload(&u64_bytes(&offsets))?;
        let out_p = self.alloc(total.max(1) * 4)?;
        let out_b = self.alloc(total.max(1) * 4)?;
        let f = self.function(cuda::SOURCE, cuda::JOIN_WRITE)?;
        let mut l = self.stream.launch_builder(&f);
        l.arg(&pcol.values.slice)
            .arg(&pvp)
            .arg(&pvo)
            .arg(&pn)
            .arg(&tkey.slice)
            .arg(&trow.slice)
            .arg(&cap_i)
            .arg(&offs.slice)
            .arg(&out_p.slice)
            .arg(&out_b.slice);
        // SAFETY: matches `sl_join_write(…, const u64* offsets, unsigned* out_probe,
        // unsigned* out_build)`; the outputs hold `total` = Σ counts entries and each
        // probe row writes exactly its count at its offset.
        unsafe { l.launch(pcfg) }.map_err(drv)?;
        let ph = self.download(&out_p, total * 4)?;
        let bh = self.download(&out_b, total * 4)?;
        for x in [tkey, trow, full, counts, offs, out_p, out_b] {
            self.free(x);
        }
        self.free_column(bcol);
        self.free_column(pcol);
        Ok((u32s(&ph), u32s(&bh)))
    }

    /// Measured bandwidths in GB/s: (host→device pageable, host→device pinned,
    /// device→host, device→device), each over `bytes` bytes.
    pub fn measure_bandwidth(&self, bytes: usize) -> Result<[f64; 4], GpuError> {
        let host = vec![1u8; bytes];
        let gbps = |secs: f64| bytes as f64 / secs / 1e9;
        let mut dst = self.alloc(bytes)?;
        let t = std::time::Instant::now();
        let mut view = dst.slice.slice_mut(0..bytes);
        self.stream.memcpy_htod(&host[..], &mut view).map_err(drv)?;
        self.stream.synchronize().map_err(drv)?;
        let pageable = gbps(t.elapsed().as_secs_f64());
        // SAFETY: uninitialized pinned memory, filled right below before any copy.
        let mut pinned = unsafe { self.ctx.alloc_pinned::<u8>(dst.slice.len()) }.map_err(drv)?;
        pinned.as_mut_slice().map_err(drv)?.fill(1);
        let t = std::time::Instant::now();
        self.stream
            .memcpy_htod(&pinned, &mut dst.slice)
            .map_err(drv)?;
        self.stream.synchronize().map_err(drv)?;
        let pinned_bw = dst.slice.len() as f64 / t.elapsed().as_secs_f64() / 1e9;
        let t = std::time::Instant::now();
        let _ = self.download(&dst, bytes)?;
        let dtoh = gbps(t.elapsed().as_secs_f64());
        let mut other = self.alloc(bytes)?;
        let t = std::time::Instant::now();
        self.stream
            .memcpy_dtod(&dst.slice, &mut other.slice)
            .map_err(drv)?;
        self.stream.synchronize().map_err(drv)?;
        // A device copy reads and writes every byte.
        let dtod = 2.0 * dst.slice.len() as f64 / t.elapsed().as_secs_f64() / 1e9;
        dst.len = 0;
        self.free(dst);
        self.free(other);
        Ok([pageable, pinned_bw, dtoh, dtod])
    }
}

fn validity_arg(dev: &GpuDevice, col: &DevColumn) -> (u64, u64) {
    match &col.validity {
        Some((v, off)) => (dev.ptr(v), *off),
        None => (0, 0),
    }
}

fn u64_bytes(v: &[u64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn u64s(b: &Buffer) -> Vec<u64> {
    b.as_slice()
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect()
}

fn u32s(b: &Buffer) -> Vec<u32> {
    b.as_slice()
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// A mask from one byte per row.
fn bytes_to_mask(b: &Buffer, rows: usize) -> BooleanArray {
    BooleanArray::from(
        b.as_slice()[..rows]
            .iter()
            .map(|&x| x != 0)
            .collect::<Vec<_>>(),
    )
}
