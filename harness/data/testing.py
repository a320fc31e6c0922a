"""A small byte-level BPE tokenizer built locally, for tests and the speed scripts in perf/ (no downloads)."""

from __future__ import annotations

from functools import lru_cache

__all__ = ["tiny_tokenizer", "CHATML_TEMPLATE"]

# A Jinja chat template in the ChatML style, for testing data.template=tokenizer.
CHATML_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@lru_cache(maxsize=4)
def tiny_tokenizer(*, bos: bool = False, chat_template: bool = False, vocab_size: int = 600):
    """A PreTrainedTokenizerFast trained on toy-benchmark code and a little prose (a second or so)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    from evaluators.benchmarks import toy

    texts = [r["prompt"] + r["completion"] for r in toy.records(None)]
    texts += ["Below is an instruction that describes a task. Write a response that appropriately completes the request.",
              "### Instruction:\n### Input:\n### Response:\n", "Write a function to sort a list of numbers."] * 20
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    specials = ["<pad>", "<eos>", "<bos>", "<|im_start|>", "<|im_end|>"]
    tk.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    if bos:
        tk.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", tk.token_to_id("<bos>"))])
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, eos_token="<eos>", pad_token="<pad>", bos_token="<bos>",
                                  additional_special_tokens=["<|im_start|>", "<|im_end|>"])
    if chat_template:
        tok.chat_template = CHATML_TEMPLATE
    return tok
