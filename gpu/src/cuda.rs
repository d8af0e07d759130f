//! Fixed CUDA C sources (compiled with NVRTC on first use, cached per device): buffer
//! fill, hash group-by (insert + accumulate) and hash-join (build + count + write).
//!
//! Hash tables use open addressing with linear probing over a power-of-two capacity.
//! Group-by: slot keys start as `EMPTY` (`i64::MIN`) and are claimed with `atomicCAS`;
//! the key `i64::MIN` itself and the NULL key get two reserved slots after the table
//! (`cap` and `cap + 1`). A probe sequence that visits every slot sets `*full`, and the
//! host retries with a larger table or falls back to the CPU. Join build: each build row
//! claims an empty slot by `atomicCAS` on the slot's row (`-1` when empty), so
//! duplicate keys take separate slots and every key value is representable.

/// Entry point names in [`SOURCE`].
pub const FILL_U64: &str = "sl_fill_u64";
/// Group-by: key insertion (slot per row, rows per slot).
pub const GB_INSERT: &str = "sl_gb_insert";
/// Group-by: accumulation of one integer argument.
pub const GB_ACCUMULATE: &str = "sl_gb_accumulate";
/// Group-by: non-NULL count of one argument of any type (validity only).
pub const GB_COUNT: &str = "sl_gb_count";
/// Join: build side insertion.
pub const JOIN_BUILD: &str = "sl_join_build";
/// Join: matches per probe row.
pub const JOIN_COUNT: &str = "sl_join_count";
/// Join: match pairs at each probe row's offset.
pub const JOIN_WRITE: &str = "sl_join_write";

/// All fixed kernels.
pub const SOURCE: &str = r#"
typedef long long i64;
typedef unsigned long long u64;
typedef unsigned char u8;
#define EMPTY ((i64)0x8000000000000000ULL)

__device__ __forceinline__ u64 sl_hash(i64 k) {
    u64 x = (u64)k;
    x ^= x >> 33; x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}
__device__ __forceinline__ bool sl_is_valid(const u8* bits, u64 off, i64 i) {
    if (bits == 0) return true;
    u64 j = off + (u64)i;
    return (bits[j >> 3] >> (j & 7)) & 1;
}

extern "C" __global__ void sl_fill_u64(u64* p, i64 n, u64 v) {
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)blockDim.x * gridDim.x) {
        p[i] = v;
    }
}

/* slot[i] = the group slot of row i (-1 when the table was full); rows[slot] += 1. */
extern "C" __global__ void sl_gb_insert(const i64* keys, const u8* valid, u64 voff, i64 n,
                                        i64* table, i64 cap, i64* slot, u64* rows, int* full) {
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)blockDim.x * gridDim.x) {
        i64 s = -1;
        if (!sl_is_valid(valid, voff, i)) {
            s = cap + 1;
        } else {
            i64 k = keys[i];
            if (k == EMPTY) {
                s = cap;
            } else {
                u64 h = sl_hash(k) & (u64)(cap - 1);
                for (i64 probe = 0; probe < cap; probe++) {
                    i64 prev = (i64)atomicCAS((u64*)&table[h], (u64)EMPTY, (u64)k);
                    if (prev == EMPTY || prev == k) { s = (i64)h; break; }
                    h = (h + 1) & (u64)(cap - 1);
                }
                if (s < 0) *full = 1;
            }
        }
        slot[i] = s;
        if (s >= 0) atomicAdd(&rows[s], 1ULL);
    }
}

/* Exact sums as hi = sum(v >> 32), lo = sum(v & 0xffffffff); min/max with 64-bit atomics. */
extern "C" __global__ void sl_gb_accumulate(const i64* slot, const i64* vals, const u8* valid,
                                            u64 voff, i64 n, u64* cnt, u64* lo, u64* hi,
                                            i64* mn, i64* mx) {
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)blockDim.x * gridDim.x) {
        i64 s = slot[i];
        if (s < 0 || !sl_is_valid(valid, voff, i)) continue;
        i64 v = vals[i];
        atomicAdd(&cnt[s], 1ULL);
        atomicAdd(&lo[s], (u64)v & 0xffffffffULL);
        atomicAdd(&hi[s], (u64)(v >> 32));
        atomicMin(&mn[s], v);
        atomicMax(&mx[s], v);
    }
}

extern "C" __global__ void sl_gb_count(const i64* slot, const u8* valid, u64 voff, i64 n, u64* cnt) {
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)blockDim.x * gridDim.x) {
        i64 s = slot[i];
        if (s < 0 || !sl_is_valid(valid, voff, i)) continue;
        atomicAdd(&cnt[s], 1ULL);
    }
}

/* table_row starts all -1; table_key[h] is meaningful where table_row[h] >= 0. */
extern "C" __global__ void sl_join_build(const i64* keys, const u8* valid, u64 voff, i64 n,
                                         i64* table_key, i64* table_row, i64 cap, int* full) {
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)blockDim.x * gridDim.x) {
        if (!sl_is_valid(valid, voff, i)) continue;
        i64 k = keys[i];
        u64 h = sl_hash(k) & (u64)(cap - 1);
        bool placed = false;
        for (i64 probe = 0; probe < cap; probe++) {
            i64 prev = (i64)atomicCAS((u64*)&table_row[h], (u64)-1LL, (u64)i);
            if (prev == -1) { table_key[h] = k; placed = true; break; }
            h = (h + 1) & (u64)(cap - 1);
        }
        if (!placed) *full = 1;
    }
}

extern "C" __global__ void sl_join_count(const i64* keys, const u8* valid, u64 voff, i64 n,
                                         const i64* table_key, const i64* table_row, i64 cap,
                                         u64* counts) {
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)blockDim.x * gridDim.x) {
        u64 c = 0;
        if (sl_is_valid(valid, voff, i)) {
            i64 k = keys[i];
            u64 h = sl_hash(k) & (u64)(cap - 1);
            for (i64 probe = 0; probe < cap && table_row[h] >= 0; probe++) {
                if (table_key[h] == k) c++;
                h = (h + 1) & (u64)(cap - 1);
            }
        }
        counts[i] = c;
    }
}

extern "C" __global__ void sl_join_write(const i64* keys, const u8* valid, u64 voff, i64 n,
                                         const i64* table_key, const i64* table_row, i64 cap,
                                         const u64* offsets, unsigned int* out_probe,
                                         unsigned int* out_build) {
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)blockDim.x * gridDim.x) {
        if (!sl_is_valid(valid, voff, i)) continue;
        i64 k = keys[i];
        u64 o = offsets[i];
        u64 h = sl_hash(k) & (u64)(cap - 1);
        for (i64 probe = 0; probe < cap && table_row[h] >= 0; probe++) {
            if (table_key[h] == k) {
                out_probe[o] = (unsigned int)i;
                out_build[o] = (unsigned int)table_row[h];
                o++;
            }
            h = (h + 1) & (u64)(cap - 1);
        }
    }
}
"#;

#[cfg(test)]
mod tests {
    #[test]
    fn fixed_kernels_pass_the_sanity_check() {
        crate::codegen::sanity_check(super::SOURCE).unwrap();
        for name in [
            super::FILL_U64,
            super::GB_INSERT,
            super::GB_ACCUMULATE,
            super::GB_COUNT,
            super::JOIN_BUILD,
            super::JOIN_COUNT,
            super::JOIN_WRITE,
        ] {
            assert!(
                super::SOURCE.contains(&format!("extern \"C\" __global__ void {name}(")),
                "{name}"
            );
        }
    }
}
