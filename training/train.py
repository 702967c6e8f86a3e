"""Training the attention decoder from cached features: cross-entropy, then optionally
self-critical sequence training (SCST) on CIDEr-D, with early stopping on val. The Trainer holds
the models, their optimizers and the step function; training/stages.py runs the epochs.

The whole caption runs inside one tf.function per length bucket; features sit in a tf.Variable so
batches are gathered in-graph instead of copied from Python.
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from captioning.decoder import AttentionDecoder, DecoderConfig
from captioning.encoder_top import EncoderTopConfig
from captioning.metrics import score_captions
from captioning.search import CompiledBeamSearch, CompiledDecoder, CompiledSampler, greedy_search, never_generated_bias
from captioning.specificity import caption_specificity
from captioning.text import Vocabulary
from training.checkpoint import Checkpoint, restore_variables
from training.cpu import cpu_has_bfloat16
from training.epoch_seeds import seed_epoch
from training.features import FeatureCache
from training.finetune import IMAGE_WORDS_KERNEL, VOCAB_AXES
from training.self_critical import SelfCriticalData
from training.stages import ProgressCallback, SelectionGate, StageRun, TrainResult

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    encoder: str = "efficientnet_lite2"
    epochs: int = 20  # the learning-rate schedule spans this many epochs
    stop_after_epochs: int | None = None  # end cross-entropy early (same schedule): for quick comparisons
    batch_size: int = 64
    learning_rate: float = 5e-4
    min_learning_rate: float = 2e-5
    clipnorm: float = 5.0
    min_word_count: int = 5
    max_words: int = 25
    patience: int = 3  # epochs without a better val score before stopping
    select_on: str = "CIDEr"  # or "BLEU-4"
    select_beam: int = 1  # the val search that scores each epoch: 1 greedy, else beam search with the bundle's α and blocking
    mirror_augment: bool = False  # cross-entropy examples may see the mirrored photo's features (half of them, without crop views)
    crop_views: int = 0  # cached random-crop views of each train photo that cross-entropy examples may see
    scst_mirror: bool = False  # with mirror_augment, SCST sees half of the photos mirrored too (measured: no better)
    label_smoothing: float = 0.0  # ε of a uniform target mixed into cross-entropy (not SCST)
    bfloat16: bool = False  # compute in bfloat16 over float32 weights: faster on some CPUs with AVX512-BF16 or AMX, not all (benchmarks/training_step.py)
    scst_epochs: int = 0
    scst_learning_rate: float = 2e-5
    scst_samples: int = 5
    scst_images_per_batch: int = 40
    scst_contrast: float = 0.0  # SCST reward minus this × the caption's CIDEr-D on other photos of the batch (self_critical.distinctive_rewards)
    scst_contrast_photos: int = 3  # how many other photos that term averages over
    length_penalty: float = 0.0  # written into the bundle: α of beam search's length normalisation
    block_repeats: bool = True  # written into the bundle: beam search blocks repeated content bigrams
    ema_momentum: float | None = None  # cross-entropy keeps a moving average of the weights; each epoch the better of it and the raw weights on val may become the bundle
    scst_ema_momentum: float | None = None  # the same for the SCST stage (it takes far fewer steps: use a smaller momentum)
    keep_epoch_weights: bool = False  # also save every epoch's weights to OUT/epochs/ (with averaging, the raw ones too)
    finetune_encoder_from: int | None = None  # train the encoder's blocks from this one on (and its head) with the decoder, from cached activations entering it
    encoder_learning_rate_scale: float = 0.1  # the fine-tuned encoder top learns at this fraction of the decoder's rate
    xe_only_words: list[int] | None = None  # cross-entropy trains only these words' embedding rows and output units (a warm-up for new words; every other weight stays)
    seed: int = 1
    decoder: dict = field(default_factory=dict)  # overrides of DecoderConfig

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        return cls(**values)


@dataclass
class EncoderTop:
    """The top of the encoder that bundles carry. `trained`: fine-tuned here, and the cache holds
    the activations entering it; otherwise (a retraining of a fine-tuned model) it is carried over
    unchanged and the cache holds the grid it makes."""
    config: EncoderTopConfig
    model: keras.Model
    trained: bool = True


def with_view_rows(cache: FeatureCache, views: list[FeatureCache]) -> np.ndarray:
    """The cache's grid followed by each view's grid (mirrored, cropped) in the same row order, so
    view k of row i is row i + k·N; a photo a view lacks (e.g. a val photo) repeats its own features."""
    count = len(cache.names)
    grid = np.empty(((1 + len(views)) * count, *cache.grid.shape[1:]), np.float16)
    grid[:count] = cache.grid
    for k, view in enumerate(views, start=1):
        position = {name: i for i, name in enumerate(view.names)}
        source = np.array([position.get(name, -1) for name in cache.names])
        has_view = source >= 0
        block = grid[k * count : (k + 1) * count]
        block[has_view] = view.grid[source[has_view]]
        block[~has_view] = grid[:count][~has_view]
    return grid


def draw_views(rows: tf.Tensor, view_count: int, view_offset: int, seed: keras.random.SeedGenerator) -> tf.Tensor:
    """Each example's feature row: the photo itself or one of its `view_count` views (mirrored,
    cropped), uniformly at random; view k of row i is row i + k·view_offset (`with_view_rows`).
    Drawn from `seed`'s state, which each epoch sets (training/epoch_seeds.py)."""
    view = keras.random.randint(tf.shape(rows), 0, view_count + 1, dtype="int32", seed=seed)
    return rows + tf.cast(view, rows.dtype) * view_offset


class Trainer:
    def __init__(
        self,
        config: TrainConfig,
        vocab: Vocabulary,
        cache: FeatureCache,
        decoder: AttentionDecoder | None = None,
        mirrored: FeatureCache | None = None,
        crops: list[FeatureCache] | tuple[FeatureCache, ...] = (),
        encoder_top: EncoderTop | None = None,
    ):
        """`mirrored` (features of the mirrored photos) and `crops` (features of cropped views) turn on
        augmentation: each cross-entropy example sees the photo or one of these views, at random.
        `encoder_top`: the encoder's top, trained with the decoder or only carried into the bundles."""
        self.config = config
        self.vocab = vocab
        self.cache = cache
        self.encoder_top = encoder_top
        grid_cells, channels = cache.grid.shape[1:]
        if self.trained_top is not None:  # the cache holds activations entering the top; the decoder reads its grid
            height, width, channels = self.trained_top.output_shape[1:]
            grid_cells = height * width
        if config.bfloat16 and not cpu_has_bfloat16():
            log.warning("this CPU has no bfloat16 instructions (AVX512-BF16 or AMX): bfloat16 is emulated and slower than float32 here")
        policy = "mixed_bfloat16" if config.bfloat16 else "float32"
        # one seed for weight init, dropout and the mirror draws (Python, NumPy, TensorFlow and Keras):
        # the same command on the same machine trains the same model
        keras.utils.set_random_seed(config.seed)
        if decoder is None or decoder.dtype_policy.name != policy:  # a given decoder is reused when its precision fits
            self.decoder = AttentionDecoder(decoder.config if decoder else DecoderConfig(len(vocab), channels, grid_cells, **config.decoder), policy)
            self.decoder.build_all()
            if decoder is not None:
                self.decoder.set_weights(decoder.get_weights())
        else:
            self.decoder = decoder
        self.grid_array = np.asarray(cache.grid)  # in memory: batches are gathered many times
        # rows [0, N) are the photos, rows [kN, (k+1)N) their k-th view: mirrored first (when given), then the crops
        views = ([mirrored] if mirrored is not None else []) + list(crops)
        self.view_count = len(views)
        self.view_offset = len(cache.names)
        self.mirror_offset = self.view_offset if mirrored is not None else 0
        features = with_view_rows(cache, views) if views else self.grid_array
        self.features = tf.Variable(features, trainable=False, dtype=tf.float16)
        del features
        self.view_seeds = keras.random.SeedGenerator(config.seed)
        # every seed-generator state (the view draws', each Dropout's): set at each epoch's start
        weights = {id(v) for v in self.decoder.weights}
        self._seed_states = [self.view_seeds.state, *(v for v in self.decoder.variables if id(v) not in weights)]
        self.compiled = CompiledDecoder(self.decoder)
        # SCST samples no longer than the captions it trains on (max_words), so a caption's reward and
        # its policy-gradient step see the same words
        self.sampler = CompiledSampler(self.compiled, vocab.start_id, vocab.end_id, min(config.max_words, self.decoder.config.max_words))
        self.optimizer: keras.optimizers.Optimizer | None = None
        self.top_optimizer: keras.optimizers.Optimizer | None = None  # the encoder top's, at a lower rate
        self._train_step = None
        self._beam_search: CompiledBeamSearch | None = None  # built on first use with select_beam > 1
        self._content_words: np.ndarray | None = None

    @property
    def trained_top(self) -> keras.Model | None:
        """The encoder top when it trains here (the cache then holds the activations entering it)."""
        top = self.encoder_top
        return top.model if top is not None and top.trained else None

    def _make_optimizer(self, learning_rate, steps: int, self_critical: bool = False) -> None:
        """Adam with cosine decay and the step function for one stage.

        Self-critical steps run without dropout and without the attention penalty, over the words
        the sampler may produce: the captions were sampled from that distribution, so their
        log-probabilities must come from it too (otherwise probability pushed off bad samples piles
        up on <unk>, which is never sampled and so never pushed back, and training collapses), and
        the reward alone decides what the model should say.
        """
        # decays towards min_learning_rate, never up to it (a self-critical rate may start below it)
        alpha = min(1.0, self.config.min_learning_rate / learning_rate)
        schedule = keras.optimizers.schedules.CosineDecay(learning_rate, max(steps, 1), alpha=alpha)
        momentum = self.config.scst_ema_momentum if self_critical else self.config.ema_momentum
        averaging = {"use_ema": True, "ema_momentum": momentum} if momentum is not None else {}
        self.optimizer = keras.optimizers.Adam(schedule, clipnorm=self.config.clipnorm, **averaging)
        self.optimizer.build(self.decoder.trainable_variables)
        top_variables = self.trained_top.trainable_variables if self.trained_top is not None else []
        if top_variables:
            scale = self.config.encoder_learning_rate_scale
            top_schedule = keras.optimizers.schedules.CosineDecay(learning_rate * scale, max(steps, 1), alpha=alpha)
            self.top_optimizer = keras.optimizers.Adam(top_schedule, clipnorm=self.config.clipnorm, **averaging)
            self.top_optimizer.build(top_variables)
        penalty_weight = 0.0 if self_critical else self.decoder.config.attention_regularization

        view_count = 0 if self_critical else self.view_count
        view_offset, view_seeds = self.view_offset, self.view_seeds
        logit_bias = tf.constant(never_generated_bias(self.decoder.config.vocab_size)) if self_critical else None
        label_smoothing = 0.0 if self_critical else self.config.label_smoothing
        only_words = None if self_critical else self.config.xe_only_words
        variables, masks = self._trained_variables(only_words)

        def train_step(rows, tokens, weights):
            if view_count:
                rows = draw_views(rows, view_count, view_offset, view_seeds)
            with tf.GradientTape() as tape:
                grid = self.grid_of_rows(rows)
                loss, nll, penalty = self.decoder.sequence_loss(
                    grid, tokens, weights, training=not self_critical, logit_bias=logit_bias, label_smoothing=label_smoothing
                )
                total = loss + penalty_weight * penalty
            gradients = tape.gradient(total, variables + top_variables)
            top_gradients = gradients[len(variables):]
            gradients = gradients[: len(variables)]
            if masks is not None:
                gradients = [tf.convert_to_tensor(g) * m for g, m in zip(gradients, masks)]
            self.optimizer.apply_gradients(zip(gradients, variables))
            if top_variables:
                self.top_optimizer.apply_gradients(zip(top_gradients, top_variables))
            return nll, penalty

        self._train_step = tf.function(train_step)

    def grid_of_rows(self, rows: tf.Tensor) -> tf.Tensor:
        """The decoder's input for feature rows: the cached grid, or the trained encoder top run on the
        cached activations (once per distinct photo: SCST repeats each photo for its samples)."""
        if self.trained_top is None:
            return tf.cast(tf.gather(self.features, rows), tf.float32)
        distinct, position = tf.unique(rows)
        activations = tf.cast(tf.gather(self.features, distinct), tf.float32)
        activations = tf.reshape(activations, [-1, *self.trained_top.input_shape[1:]])
        grid = self.trained_top(activations, training=False)  # batch norm keeps ImageNet's statistics
        grid = tf.reshape(grid, [tf.shape(grid)[0], -1, grid.shape[-1]])
        return tf.gather(grid, position)

    def _trained_variables(self, only_words: list[int] | None) -> tuple[list, list | None]:
        """All trainable variables, or (for a new-word warm-up) the vocabulary-sized ones and the image
        words' kernel, with 0/1 gradient masks that let only `only_words` rows (embedding), units
        (output layer) and image terms move."""
        if only_words is None:
            return self.decoder.trainable_variables, None
        variables, masks = [], []
        image_words = list(self.decoder.config.image_word_ids)
        for variable in self.decoder.trainable_variables:
            if variable.path == IMAGE_WORDS_KERNEL:  # the image terms of those words among the image words
                variables.append(variable)
                masks.append(tf.constant([[float(i in only_words) for i in image_words]]))
                continue
            axis = VOCAB_AXES.get(variable.path)
            if axis is None:
                continue
            shape = [1] * len(variable.shape)
            shape[axis] = variable.shape[axis]
            mask = np.zeros(shape, np.float32)
            np.put_along_axis(mask, np.array(only_words).reshape([-1 if i == axis else 1 for i in range(len(shape))]), 1.0, axis)
            variables.append(variable)
            masks.append(tf.constant(mask))
        return variables, masks

    def checkpoint_variables(self) -> dict[str, tf.Variable]:
        """What training changes, by names stable across processes (seed-generator states are not
        among them: each epoch sets them)."""
        variables = {f"decoder/{v.path}": v for v in self.decoder.weights}
        if self.encoder_top is not None:  # a carried top too: a resumed run rebuilds it from ImageNet's
            variables.update({f"encoder_top/{v.path}": v for v in self.encoder_top.model.weights})
        return variables

    def checkpoint_optimizers(self) -> dict[str, keras.optimizers.Optimizer]:
        """The current stage's optimizers by the model each one trains."""
        optimizers = {"decoder": self.optimizer} if self.optimizer is not None else {}
        if self.top_optimizer is not None:
            optimizers["encoder_top"] = self.top_optimizer
        return optimizers

    def model_configs(self) -> dict[str, dict]:
        """What rebuilds the trained models before a checkpoint is restored into them."""
        configs = {"decoder": self.decoder.config.to_dict()}
        if self.encoder_top is not None:
            configs["encoder_top"] = {**self.encoder_top.config.to_dict(), "trained": self.encoder_top.trained}
        return configs

    def reseed(self, stage: str, epoch: int) -> None:
        """Every random draw of the epoch from (seed, stage, epoch): a resumed run draws what an uninterrupted one would."""
        seed_epoch(self.config.seed, stage, epoch, self._seed_states)

    def start_stage(self, learning_rate: float, steps: int, self_critical: bool = False, resume: Checkpoint | None = None) -> None:
        """The stage's optimizers and step function; `resume`: a checkpoint written within this
        stage, whose optimizer state (step count, moments, averages) goes on."""
        self._make_optimizer(learning_rate, steps, self_critical)
        if resume is not None:
            restore_variables(resume, optimizers=self.checkpoint_optimizers())

    def train_step(self, rows: tf.Tensor, tokens: tf.Tensor, weights: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """One optimizer step of the current stage on these feature rows: (negative log-likelihood, attention penalty)."""
        return self._train_step(rows, tokens, weights)

    @property
    def averaging(self) -> bool:
        return bool(self.optimizer is not None and self.optimizer.use_ema)

    @contextmanager
    def averaged_weights(self) -> Iterator[None]:
        """Inside, the decoder (and a trained encoder top) holds the optimizers' moving average of its
        weights (when the stage keeps one); training goes on from the raw weights afterwards."""
        if not self.averaging:
            yield
            return
        top_variables = self.trained_top.trainable_variables if self.top_optimizer is not None else []
        variables = self.decoder.trainable_variables + top_variables
        raw = [v.numpy() for v in variables]
        self.optimizer.finalize_variable_values(self.decoder.trainable_variables)
        if top_variables:
            self.top_optimizer.finalize_variable_values(top_variables)
        try:
            yield
        finally:
            for variable, value in zip(variables, raw):
                variable.assign(value)

    def grid(self, names: list[str]) -> np.ndarray:
        if self.trained_top is not None:
            return self.grid_of_rows(tf.constant(self.cache.rows(names), tf.int32)).numpy()
        return self.grid_array[self.cache.rows(names)].astype(np.float32)

    @property
    def val_search(self) -> str:
        return "greedy" if self.config.select_beam <= 1 else f"beam{self.config.select_beam}"

    def evaluate(self, references: dict[str, list[str]], batch: int = 250) -> tuple[dict, dict[str, str]]:
        """Val scores by the selection search: greedy, or beam search as the bundle will run it (its
        α and blocking), which ranks epochs differently from greedy (docs/experiments.md); with them,
        how specific the captions are (captioning/specificity.py; about 20 ms for the 1,000 val photos)."""
        c = self.config
        if c.select_beam > 1 and self._beam_search is None:  # traced once; it reads the live weights
            self._beam_search = CompiledBeamSearch(self.compiled, self.vocab.start_id, self.vocab.end_id, self.decoder.config.max_words, c.select_beam)
            self._content_words = self.vocab.content_words() if c.block_repeats else None
        names = sorted(references)
        captions: dict[str, str] = {}
        for start in range(0, len(names), batch):
            chunk = names[start : start + batch]
            if self._beam_search is not None:
                hyps = self._beam_search(self.grid(chunk), c.length_penalty, self._content_words)
            else:
                hyps = greedy_search(self.compiled, self.grid(chunk), self.vocab.start_id, self.vocab.end_id, self.decoder.config.max_words)
            captions.update({n: " ".join(self.vocab.decode(h.ids)) for n, h in zip(chunk, hyps)})
        return {**score_captions(references, captions), **caption_specificity(captions, references).to_dict()}, captions

    def fit(
        self,
        train: dict[str, list[str]],
        val: dict[str, list[str]],
        out_dir: Path,
        version: str,
        weights: dict[str, float] | None = None,
        training_info: dict | None = None,
        on_progress: ProgressCallback | None = None,
        self_critical: SelfCriticalData | None = None,
        gate: SelectionGate | None = None,
        run_args: dict | None = None,
        resume: Checkpoint | None = None,
        checkpoints: bool = True,
    ) -> TrainResult:
        """Cross-entropy epochs on `train`, then SCST epochs (on `self_critical`, by default `train`
        with its own references); the best val epoch is saved as a bundle in out_dir/bundle.

        With a `gate` (a retraining's promotion rule), an epoch that passes it beats every epoch
        that does not, whatever their scores: the kept epoch is the best one that may be promoted.

        After every epoch out_dir/checkpoint holds the run's state (training/checkpoint.py), with
        `run_args` (the caller's record of where its data came from) beside it; given that
        checkpoint as `resume`, a new Trainer on the same data goes on from the next epoch and ends
        with the bundle and history of an uninterrupted run. `checkpoints=False` writes none.
        """
        return StageRun(self, train, val, out_dir, version, weights, training_info, on_progress, self_critical, gate,
                        run_args, resume, checkpoints).train()

    def self_critical_rows(self, names: list[str], rng: np.random.Generator) -> np.ndarray:
        """Feature rows for k samples of each image: with `scst_mirror`, each image is seen as itself
        or mirrored at random (all its k samples alike, so they share one baseline)."""
        rows = self.cache.rows(names)
        if self.mirror_offset and self.config.scst_mirror:
            rows = rows + self.mirror_offset * (rng.random(len(rows)) < 0.5)
        return np.repeat(rows, self.config.scst_samples)
