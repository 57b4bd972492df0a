"""Block-wise Fastfood Johnson–Lindenstrauss projection of a flat gradient (paper Eqs. 8-9, notes §8.5).

P = (1/(ξ√D′)) S·H·G·Π·H·B (Le et al. 2014), applied block-wise: the flattened gradient (length D) is cut
into consecutive blocks of ``b`` entries (a power of two ≤ 32768, the CUDA kernel's limit; the last block
is zero-padded); block j gets its own B_j (Rademacher signs), G_j (Gaussian diagonal) and S_j (scaling);
H is the unnormalised Walsh–Hadamard matrix; the first D′ rows of every block's output are summed.

Normalisation. A row of H·G·Π·H·B has squared norm b·‖G‖²_F, so with S_ii = s_i/‖G‖_F and E s_i² = b each
row of S·H·G·Π·H·B satisfies E (row·x)² = b‖x‖² exactly (x's Hadamard spread y = ΠHBx has ‖y‖² = b‖x‖²
and E[G_k²/‖G‖²] = 1/b by exchangeability). Keeping D′ rows and summing blocks (the independent zero-mean
B_j make cross-block terms vanish in expectation) gives E‖Px‖² = ‖x‖² with ξ = √b.

S. Le et al. draw s_i ~ chi(b). For the block sizes used (≥ 64 degrees of freedom) chi(b) is very nearly
N(√(b−½), ½): its mean is √(b−½) + O(b^-3/2) (1e-4 off at b = 64, 1e-8 at 32768) and its variance ½ − O(1/b).
So s_i = √(b−½) + √½·z_i, z_i standard normal from the same hash as the other randoms; E s_i² = b exactly.

Randomness. Nothing is drawn from a generator's stream: each global index i gets a 32-bit hash
h(i) = mix(low32(i), key = mix(high32(i), seed key)), computed with int64 torch ops whose intermediates
stay below 2^63 (32-bit values × odd multipliers < 2^31, masked to 32 bits), so CPU and CUDA give the same
bits and indices beyond 2^32 (5B-parameter models) work. The block path computes the same bits in int32,
where products wrap modulo 2^32 (the masking) and right shifts are masked to be logical: half the memory
traffic and no 64-bit multiplies, which x86 vector units lack. B_i is the top bit of h(i); G_i is a Box–Muller
normal from the low 23 bits of h(i) and the high 23 bits of a keyed re-hash; S_{j,i} is built the same
way from two more keyed re-hashes of h(j·b + i). The permutation Π is one permutation of b shared by all
blocks: the argsort of hashed keys (the same on every device and torch version, unlike randperm's
stream). Sharing Π keeps the sum a valid JL map: given Π, each block is an independent Fastfood
transform (its own B_j, G_j, S_j) and the norm estimate is unbiased for any fixed Π. The state is Π alone,
O(b), never O(D): the diagonals are regenerated from the hash for each batch of blocks.
"""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Callable, Iterator

import torch

from motive_core.attribution.hadamard import MAX_HADAMARD_DIM, walsh_hadamard
from motive_core.errors import MotiveError

_MASK32 = 0xFFFFFFFF
_LOW23 = (1 << 23) - 1
_MUL_A = 0x7FEB352D  # odd multipliers < 2^31: a 32-bit value times one stays < 2^63
_MUL_B = 0x2C1B3C6D
_STREAMS = {"index": 0x9E3779B9, "gauss": 0x85EBCA6B, "chi_a": 0xC2B2AE35, "chi_b": 0x27D4EB2F,
            "perm": 0x165667B1, "sketch_column": 0xD3A2646C, "sketch_row": 0xFD7046C5}
_BUFFER_ELEMENTS = {"cuda": 1 << 24, "cpu": 1 << 17}  # floats projected per batch (CPU: stay in cache)
_CACHE_ENTRIES = 1 << 23  # models up to ~8M gradient entries keep their random diagonals between clips
_DENSE_LIMIT = 1 << 16  # dense_matrix: largest D
_DENSE_BLOCK_LIMIT = 1 << 12  # dense_matrix: largest block (it builds b × b matrices)


def _wrapped(x) -> bool:
    """Whether ``x`` holds 32-bit values as int32 bit patterns (products wrap; shifts need masking)."""
    return isinstance(x, torch.Tensor) and x.dtype == torch.int32


def _shr(x, bits: int):
    """Logical right shift of 32-bit values (int32 tensors shift arithmetically, so the sign copies are masked)."""
    shifted = x >> bits
    if _wrapped(x):
        shifted &= (1 << (32 - bits)) - 1
    return shifted


def _as_int32(key):
    """A 32-bit key (int, or int64 tensor < 2^32) as the int32 with the same bits."""
    if isinstance(key, torch.Tensor):
        return key.to(torch.int32)
    return key - (1 << 32) if key >= 1 << 31 else key


def _mix32(x, key):
    """Keyed 32-bit finaliser (xor-shift-multiply, key also injected mid-way) on ints, int64 tensors < 2^32,
    or int32 tensors holding the same bits (the result then holds the same bits too).

    A bijection of [0, 2^32) for each key; the mid-way key makes different seeds differ beyond a
    relabelling of indices. The first line copies, so a tensor argument is never modified.
    """
    wrapped = _wrapped(x)
    if wrapped:
        key = _as_int32(key)
    x = x ^ key
    x ^= _shr(x, 16)
    x *= _MUL_A
    if not wrapped:
        x &= _MASK32
    x ^= key
    x ^= _shr(x, 15)
    x *= _MUL_B
    if not wrapped:
        x &= _MASK32
    x ^= _shr(x, 16)
    return x


def _key(seed: int, stream: str) -> int:
    """A 32-bit key for one random stream of one seed (all 64 bits of the seed count)."""
    return _mix32(_mix32(seed >> 32, _STREAMS[stream]), seed & _MASK32)


def _hash_halves(low: torch.Tensor, high: torch.Tensor, seed: int) -> torch.Tensor:
    """Hash of index = high·2^32 + low: the high half keys the hash of the low half."""
    return _mix32(low, _mix32(high, _key(seed, "index")))


def index_hash(indices: torch.Tensor, seed: int) -> torch.Tensor:
    """32-bit hash (as int64) of each global index ≥ 0, the base of every random entry at that index."""
    indices = indices.to(torch.int64)
    return _hash_halves(indices & _MASK32, indices >> 32, seed)


def index_hash_range(start: int, count: int, seed: int, device=None, stream: str = "index") -> torch.Tensor:
    """:func:`index_hash` of start … start+count−1 as int32 bit patterns (the fast form other projectors use);
    ``stream`` names an independent family of hashes of the same indices."""
    pieces, index = [], start
    while index < start + count:
        length = min(start + count - index, (1 << 32) - (index & _MASK32))  # stay within one high half
        low = _as_int32(index & _MASK32) + torch.arange(length, dtype=torch.int32, device=device)
        pieces.append(_mix32(low, _mix32(index >> 32, _key(seed, stream))))
        index += length
    return torch.cat(pieces) if len(pieces) != 1 else pieces[0]


def _unit(bits: torch.Tensor) -> torch.Tensor:
    """Uniform in (0, 1) from 23 random bits, exact in float32: (2k+1)/2^24 = k·2^-23 + 2^-24 (both exact)."""
    return bits.to(torch.float32).mul_(2.0 ** -23).add_(2.0 ** -24)


def _box_muller(bits_a: torch.Tensor, bits_b: torch.Tensor) -> torch.Tensor:
    """Standard normal from the low 23 bits of ``bits_a`` and the high 23 bits of ``bits_b``."""
    radius = _unit(bits_a & _LOW23).log_().mul_(-2.0).sqrt_()
    return radius.mul_(_unit(_shr(bits_b, 9)).mul_(2.0 * math.pi).cos_())


def _signs(base: torch.Tensor) -> torch.Tensor:
    """B: Rademacher ±1 from the top bit of the index hash (disjoint from the bits the Gaussian uses)."""
    return 1.0 - 2.0 * _shr(base, 31).to(torch.float32)


def _gaussians(base: torch.Tensor, seed: int) -> torch.Tensor:
    """G: N(0, 1) from the index hash and one keyed re-hash of it."""
    return _box_muller(base, _mix32(base, _key(seed, "gauss")))


def hashed_signs_and_gaussians(indices: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """B and G entries at these global indices, element by element (the reference for the block path)."""
    base = index_hash(indices, seed)
    return _signs(base), _gaussians(base, seed)


_serial = {"lock": threading.Lock(), "depth": 0, "threads": 1}


@contextmanager
def serial_cpu_ops(device: torch.device) -> Iterator[None]:
    """Run torch's CPU ops on one intra-op thread inside (re-entrant; other devices untouched).

    A projection is a few dozen small ops per batch of blocks; with a second intra-op thread each op ends
    in a barrier, which on a busy machine made it 10-30x slower, so the CPU path runs them serially.
    """
    if device.type != "cpu":
        yield
        return
    with _serial["lock"]:
        if _serial["depth"] == 0:
            _serial["threads"] = torch.get_num_threads()
            torch.set_num_threads(1)
        _serial["depth"] += 1
    try:
        yield
    finally:
        with _serial["lock"]:
            _serial["depth"] -= 1
            if _serial["depth"] == 0:
                torch.set_num_threads(_serial["threads"])


def run_in_order(device: torch.device, tasks: list[Callable[[], torch.Tensor]]) -> list[torch.Tensor]:
    """Results of ``tasks`` in order. On the CPU they run side by side on as many threads as torch was set
    to use, each task's ops on one thread: parallel across blocks instead of inside small ops."""
    with serial_cpu_ops(device):
        workers = min(_serial["threads"], len(tasks)) if device.type == "cpu" else 1
        if workers <= 1:
            return [task() for task in tasks]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(lambda task: task(), tasks))


def _next_pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


@dataclass(frozen=True)
class FastfoodConfig:
    """Settings that change every projected vector: output dim D′, seed, and the block size b."""

    dim: int = 512
    seed: int = 0
    block_size: int = 32768

    def __post_init__(self):
        b = self.block_size
        if b < 1 or b & (b - 1) or b > MAX_HADAMARD_DIM:
            raise MotiveError(f"Fastfood block size must be a power of two ≤ {MAX_HADAMARD_DIM}, got {b}")
        if not 1 <= self.dim <= b:
            raise MotiveError(f"projection dimension {self.dim} must be between 1 and the block size {b}")
        if not 0 <= self.seed < 2 ** 64:
            raise MotiveError(f"projection seed must be an integer in [0, 2^64), got {self.seed}")

    def to_dict(self) -> dict:
        return asdict(self)


def effective_block_size(config: FastfoodConfig, total_dim: int) -> int:
    """The configured block, capped to next_pow2(D) for small gradients but never below D′."""
    return min(config.block_size, max(_next_pow2(total_dim), _next_pow2(config.dim)))


class ProjectorBase:
    """What every projector holds: its config (D′, seed), the gradient length it takes and its device."""

    def __init__(self, config: FastfoodConfig, total_dim: int, device="cpu"):
        if total_dim < 1:
            raise MotiveError(f"cannot project an empty gradient (total_dim={total_dim})")
        self.config = config
        self.total_dim = int(total_dim)
        self.device = torch.device(device)


Hadamard = Callable[..., torch.Tensor]  # (x, rows=None) → H·x along the last dim (its first ``rows`` entries)


class FastfoodProjector(ProjectorBase):
    """Projects a flat gradient of ``total_dim`` entries to ``config.dim`` (P·x, Eq. 8, unnormalised).

    Strategies are arguments: ``hadamard`` computes H·x (default: the CUDA kernel where it runs, else the
    Kronecker-factored torch form; any exact H gives the same vectors to float rounding), and
    ``batch_elements`` is how many floats one batch of blocks may hold (default: per device, sized to stay in
    cache on a CPU).
    """

    def __init__(self, config: FastfoodConfig, total_dim: int, device="cpu", hadamard: Hadamard = walsh_hadamard,
                 batch_elements: int | None = None):
        super().__init__(config, total_dim, device)
        if batch_elements is not None and batch_elements < 1:
            raise ValueError(f"batch_elements must be positive, got {batch_elements}")
        self.hadamard = hadamard
        self.batch_elements = batch_elements
        self.block_size = effective_block_size(config, self.total_dim)
        self.num_blocks = -(-self.total_dim // self.block_size)
        self.scale = 1.0 / math.sqrt(self.block_size * config.dim)  # 1/(ξ√D′), ξ = √b
        self._perm_cpu = self._permutation()
        self._perms: dict[torch.device, torch.Tensor] = {}
        self._randoms: dict[tuple, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    def _permutation(self) -> torch.Tensor:
        """Π: argsort of hashed keys (hash·b + position makes every key distinct, < 2^47)."""
        positions = torch.arange(self.block_size, dtype=torch.int64)
        keys = _mix32(index_hash(positions, self.config.seed), _key(self.config.seed, "perm"))
        return torch.argsort(keys * self.block_size + positions)

    def permutation(self, device: torch.device) -> torch.Tensor:
        """Π on ``device`` (moved there once)."""
        if device not in self._perms:
            self._perms[device] = self._perm_cpu.to(device)
        return self._perms[device]

    def block_randoms(self, first_block: int, count: int, device: torch.device):
        """B (count, b), G (count, b) and S (count, D′) of blocks first_block … first_block+count−1.

        They are the same for every clip; for small models (≤ _CACHE_ENTRIES gradient entries, e.g. the
        demo's ~1M) they are kept after the first clip, which halves the per-clip projection time. Large
        models regenerate them per batch, so the state stays O(block), never O(parameters).
        """
        key = (first_block, count, torch.device(device))
        if key in self._randoms:
            return self._randoms[key]
        randoms = self._generate_randoms(first_block, count, device)
        if self.num_blocks * self.block_size <= _CACHE_ENTRIES:
            self._randoms[key] = randoms
        return randoms

    def _generate_randoms(self, first_block: int, count: int, device: torch.device):
        seed, b = self.config.seed, self.block_size
        starts = (torch.arange(count, dtype=torch.int64, device=device) + first_block) * b
        # int32 bit patterns (see the module docstring); b divides 2^32, so a block never straddles two
        # high halves (one high half per row) and low + position never carries out of 32 bits
        low = _as_int32(starts & _MASK32).unsqueeze(1) + torch.arange(b, dtype=torch.int32, device=device)
        base = _hash_halves(low, (starts >> 32).unsqueeze(1), seed)
        gauss = _gaussians(base, seed)
        head = base[:, : self.config.dim]
        chi_z = _box_muller(_mix32(head, _key(seed, "chi_a")), _mix32(head, _key(seed, "chi_b")))
        scaling = (math.sqrt(b - 0.5) + math.sqrt(0.5) * chi_z) / gauss.norm(dim=1, keepdim=True)
        return _signs(base), gauss, scaling

    def project_blocks(self, blocks: torch.Tensor, first_block: int) -> torch.Tensor:
        """Σ_j P_j x_j for consecutive, already padded fp32 blocks (count, b) → (D′,).

        Leading dimensions are gradients sharing the blocks' randoms: (N, count, b) → (N, D′). The second
        Hadamard computes only the D′ rows S keeps.
        """
        with serial_cpu_ops(blocks.device):
            signs, gauss, scaling = self.block_randoms(first_block, blocks.shape[-2], blocks.device)
            mixed = self.hadamard(blocks * signs)
            # index_select on a 2-D view: 3x faster than x[..., Π], and far faster than on more dimensions
            flat = mixed.reshape(-1, mixed.shape[-1])
            permuted = torch.index_select(flat, 1, self.permutation(blocks.device)).view(mixed.shape)
            head = self.hadamard(permuted.mul_(gauss), rows=self.config.dim)
            return (head * scaling).sum(dim=-2) * self.scale

    def project(self, vector: torch.Tensor) -> torch.Tensor:
        """P·x for the whole flat gradient (D,) on its own device → (D′,) float32 (not yet normalised)."""
        stream = self.stream(vector.device)
        stream.update(vector)
        return stream.finish()

    def project_batch(self, vectors: torch.Tensor) -> torch.Tensor:
        """P·x for each row of (N, D) → (N, D′) float32, generating the random diagonals once for all rows.

        Equal to projecting each row on its own (to float rounding), and cheaper when the randoms are
        regenerated (models over ~8M entries): their cost is shared by the N gradients.
        """
        if vectors.ndim != 2 or vectors.shape[1] != self.total_dim:
            raise ValueError(f"project_batch expects (N, {self.total_dim}) gradients, got {tuple(vectors.shape)}")
        b, device = self.block_size, vectors.device
        step = max(1, min(self.batch_budget(device) // (b * vectors.shape[0]), self.num_blocks))  # N·count·b floats stay in cache

        def batch(first: int) -> torch.Tensor:
            count = min(step, self.num_blocks - first)
            piece = vectors[:, first * b:(first + count) * b].to(torch.float32)
            if piece.shape[1] < count * b:
                piece = torch.nn.functional.pad(piece, (0, count * b - piece.shape[1]))
            return self.project_blocks(piece.reshape(-1, count, b), first)

        total = torch.zeros(vectors.shape[0], self.config.dim, dtype=torch.float32, device=device)
        for part in run_in_order(device, [lambda first=first: batch(first) for first in range(0, self.num_blocks, step)]):
            total += part
        return total

    def batch_budget(self, device: torch.device) -> int:
        """Floats one batch of blocks may hold on ``device``."""
        return self.batch_elements or _BUFFER_ELEMENTS["cuda" if device.type == "cuda" else "cpu"]

    def stream(self, device=None) -> "ProjectionStream":
        """A projection fed in consecutive pieces (e.g. one parameter's gradient at a time)."""
        return ProjectionStream(self, self.device if device is None else torch.device(device))


class StreamBase:
    """What every projection stream shares: the running total P·x and the checks on how much x it was fed."""

    def __init__(self, projector, device: torch.device):
        self.projector = projector
        self.device = device
        self._fed = 0
        self._total = torch.zeros(projector.config.dim, dtype=torch.float32, device=device)
        self._finished = False

    def _accept(self, chunk: torch.Tensor) -> torch.Tensor:
        """``chunk`` flattened and counted, once neither the stream is finished nor the gradient too long."""
        if self._finished:
            raise MotiveError("this projection stream is finished; start a new one with projector.stream()")
        flat = chunk.detach().reshape(-1)
        if self._fed + flat.numel() > self.projector.total_dim:
            raise MotiveError(f"fed {self._fed + flat.numel()} gradient entries, more than the "
                              f"{self.projector.total_dim} this projector was built for")
        self._fed += flat.numel()
        return flat

    def _close(self) -> None:
        """Refuse a second finish and a gradient of the wrong length; mark the stream finished."""
        if self._finished:
            raise MotiveError("this projection stream was already finished")
        if self._fed != self.projector.total_dim:
            raise MotiveError(f"the gradient had {self._fed} entries but the projector expects "
                              f"{self.projector.total_dim}; the parameter selection differs from the index's")
        self._finished = True


class ProjectionStream(StreamBase):
    """Accumulates P·x from consecutive chunks of x; buffers at most ~16M floats, whole blocks at a time."""

    def __init__(self, projector: FastfoodProjector, device: torch.device):
        super().__init__(projector, device)
        b = projector.block_size
        self.batch_blocks = max(1, min(projector.batch_budget(device) // b, projector.num_blocks))
        self._buffer: torch.Tensor | None = None
        self._filled = 0  # entries in the buffer
        self._next_block = 0  # global index of the buffer's first block

    def update(self, chunk: torch.Tensor) -> None:
        """Feed the next consecutive piece of the flat gradient (any shape; cast to fp32 as it enters)."""
        flat = self._accept(chunk)
        start, b = 0, self.projector.block_size
        while start < flat.numel():
            if self._filled == 0 and flat.numel() - start >= b:
                start += self._project_direct(flat[start:])
            else:
                start += self._fill(flat[start:])

    def _project_direct(self, flat: torch.Tensor) -> int:
        """Project whole blocks straight from the chunk (no buffer copy); returns how many entries it used."""
        b = self.projector.block_size
        step = self.batch_blocks * b
        whole = (flat.numel() // b) * b

        def batch(start: int) -> torch.Tensor:
            piece = flat[start:min(start + step, whole)].to(self.device, torch.float32)
            return self.projector.project_blocks(piece.view(-1, b), self._next_block + start // b)

        for part in run_in_order(self.device, [lambda start=start: batch(start) for start in range(0, whole, step)]):
            self._total += part
        self._next_block += whole // b
        return whole

    def _fill(self, flat: torch.Tensor) -> int:
        """Copy as much of ``flat`` as fits into the buffer, projecting it when full; returns entries used."""
        if self._buffer is None:
            self._buffer = torch.empty(self.batch_blocks * self.projector.block_size, dtype=torch.float32,
                                       device=self.device)
        n = min(flat.numel(), self._buffer.numel() - self._filled)
        self._buffer[self._filled:self._filled + n] = flat[:n].to(self.device, torch.float32)
        self._filled += n
        if self._filled == self._buffer.numel():
            self._flush()
        return n

    def _flush(self) -> None:
        """Project the buffered entries, zero-padding to whole blocks."""
        b = self.projector.block_size
        used = -(-self._filled // b) * b
        self._buffer[self._filled:used] = 0.0
        self._add(self._buffer[:used].view(-1, b))
        self._filled = 0

    def _add(self, blocks: torch.Tensor) -> None:
        self._total += self.projector.project_blocks(blocks, self._next_block)
        self._next_block += blocks.shape[0]

    def finish(self) -> torch.Tensor:
        """Pad the last block and return P·x (D′,) float32; refuses a gradient of the wrong length."""
        self._close()
        if self._filled:
            self._flush()
        self._buffer = None
        return self._total


def l2_normalize(v: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """g̃ = Pg / ‖Pg‖ (Eq. 9); ``eps`` guards a zero vector."""
    return v / v.norm().clamp_min(eps)


def _dense_hadamard(n: int) -> torch.Tensor:
    h = torch.ones(1, 1, dtype=torch.float64)
    while h.shape[0] < n:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return h


def dense_matrix(config: FastfoodConfig, total_dim: int) -> torch.Tensor:
    """The explicit (D′, D) matrix P, block by block (S·H·G·Π·H·B, scaled); for tests on small D only."""
    if total_dim > _DENSE_LIMIT:
        raise MotiveError(f"dense_matrix is for tests: total_dim {total_dim} exceeds {_DENSE_LIMIT}")
    projector = FastfoodProjector(config, total_dim)
    b, dim = projector.block_size, config.dim
    if b > _DENSE_BLOCK_LIMIT:
        raise MotiveError(f"dense_matrix is for tests: block size {b} exceeds {_DENSE_BLOCK_LIMIT}")
    hadamard = _dense_hadamard(b)
    perm_matrix = torch.eye(b, dtype=torch.float64)[projector.permutation(torch.device("cpu"))]
    signs, gauss, scaling = projector.block_randoms(0, projector.num_blocks, torch.device("cpu"))
    blocks = []
    for j in range(projector.num_blocks):
        right = perm_matrix @ hadamard @ torch.diag(signs[j].double())
        left = torch.diag(scaling[j].double()) @ hadamard[:dim] @ torch.diag(gauss[j].double())
        blocks.append(left @ right)
    return (torch.cat(blocks, dim=1)[:, :total_dim] * projector.scale).to(torch.float32)
