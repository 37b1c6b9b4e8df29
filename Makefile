# t2quant: two commands on a fresh machine -- `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_OUT ?= demo-output

.PHONY: venv demo test lint bench train-segmenter train-grader clean

venv: $(STAMP)

# Rebuilt only when the package metadata changes; the package is installed editable,
# so source edits need no reinstall.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	NIPYPE_NO_ET=1 $(BIN)/t2quant demo $(DEMO_OUT) --jobs 2

test: $(STAMP)
	NIPYPE_NO_ET=1 $(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

bench: $(STAMP)
	@for script in bench/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

# Retrain the disc segmenter from the phantom (about 1.7 h on one core): installs the train
# extra (PyTorch, onnx) into the venv, builds the label-map bank, trains stages 1 and 2 and
# exports src/t2quant/data/discseg.onnx. Neither `make demo` nor `make test` needs it.
SEGMENTER_WORK ?= build/segmenter
# real volumes with manual disc masks the shipped segmenter is fine-tuned on (not in the
# repository: Menezes-Reis et al. 2016, from a GPL-3.0 repository; see the model card)
SEGMENTER_REAL ?= $(sort $(wildcard ../shared/data/real/menezes-reis-ivd-*))
train-segmenter: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,train]'
	@test -n "$(SEGMENTER_REAL)" || { echo "train-segmenter: no ../shared/data/real/menezes-reis-ivd-* beside the repository; set SEGMENTER_REAL to the folders with T2w.nii.gz and discs_manual.nii.gz"; exit 2; }
	OMP_NUM_THREADS=1 $(BIN)/python -m t2quant.training --work $(SEGMENTER_WORK) --real $(SEGMENTER_REAL)

# Retrain the disc-appearance network of the Pfirrmann grader (about 4.5 min on 2 cores) on
# the shared SPIDER slices and their radiologists' grades, refit the packaged ordinal grader
# on its out-of-fold scores (and the criteria-only fallback and the walk's thresholds), and
# measure it held out (nested cross-validation, about 14 min). Writes
# src/t2quant/data/disc_appearance.onnx, fixtures/spider_appearance_oof.tsv and the three
# packaged grader files (pfirrmann_ordinal.json, pfirrmann_ordinal_criteria.json,
# pfirrmann_thresholds.json). Not needed by `make demo` or `make test`.
GRADER_WORK ?= build/grader
SPIDER ?= ../shared/data/real/spider-midsagittal-t2
SPIDER_GRADES ?= ../shared/data/reference/spider-gradings/radiological_gradings.csv
train-grader: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,train]'
	@test -f "$(SPIDER)/participants.tsv" || { echo "train-grader: $(SPIDER) not found; set SPIDER and SPIDER_GRADES to the SPIDER slices and radiological_gradings.csv"; exit 2; }
	OMP_NUM_THREADS=2 $(BIN)/python -m t2quant.training.grader --spider $(SPIDER) --grades $(SPIDER_GRADES) --segmentations $(GRADER_WORK)/spider/seg --work $(GRADER_WORK)
	cp $(GRADER_WORK)/oof_appearance.tsv fixtures/spider_appearance_oof.tsv
	OMP_NUM_THREADS=2 $(BIN)/python bench/bench_spider_grading.py --work $(GRADER_WORK)/spider --oof $(GRADER_WORK)/oof_appearance.tsv --package

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
