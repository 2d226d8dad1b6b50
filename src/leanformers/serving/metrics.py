"""Server metrics in the Prometheus text format: request and token counters, queue depth, batch size, time to
first token and latency histograms."""

from __future__ import annotations

import bisect
import threading

_BUCKETS = {
    "ttft": (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    "latency": (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0),
    "prefill_seconds": (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    "batch_size": (1, 2, 4, 8, 16, 32, 64, 128),
}
_HELP = {
    "ttft": "Seconds from a request's arrival to its first token.",
    "latency": "Seconds from a request's arrival to its last token.",
    "prefill_seconds": "Seconds of one prefill chunk (a prompt longer than --prefill-chunk takes several).",
    "batch_size": "Running requests in one decoding step.",
}


class Histogram:
    def __init__(self, bounds):
        self.bounds, self.counts, self.total, self.count = bounds, [0] * (len(bounds) + 1), 0.0, 0

    def observe(self, value: float):
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value
        self.count += 1


class Metrics:
    """Counters and histograms shared by the HTTP side and the scheduler thread."""

    def __init__(self):
        self._lock = threading.Lock()
        self.requests: dict[tuple, int] = {}      # (endpoint, status) -> count
        self.prompt_tokens = 0
        self.reused_prompt_tokens = 0
        self.completion_tokens = 0
        self.queue_depth = 0
        self.running = 0
        self.histograms = {name: Histogram(bounds) for name, bounds in _BUCKETS.items()}

    def observe(self, name: str, value: float):
        with self._lock:
            self.histograms[name].observe(value)

    def count_request(self, endpoint: str, status: int):
        with self._lock:
            key = (endpoint, status)
            self.requests[key] = self.requests.get(key, 0) + 1

    def render(self) -> str:
        """The Prometheus text exposition (version 0.0.4)."""
        lines = ["# HELP leanformers_requests_total HTTP requests by endpoint and status.",
                 "# TYPE leanformers_requests_total counter"]
        with self._lock:
            for (endpoint, status), count in sorted(self.requests.items()):
                lines.append(f'leanformers_requests_total{{endpoint="{endpoint}",status="{status}"}} {count}')
            for name, value, kind, text in (
                    ("prompt_tokens_total", self.prompt_tokens, "counter",
                     "Prompt tokens of the requests served (reused ones included)."),
                    ("reused_prompt_tokens_total", self.reused_prompt_tokens, "counter",
                     "Prompt tokens taken from the prefix cache (--prefix-cache)."),
                    ("completion_tokens_total", self.completion_tokens, "counter", "Tokens generated."),
                    ("queue_depth", self.queue_depth, "gauge", "Requests waiting for a slot."),
                    ("running_requests", self.running, "gauge", "Requests in the decoding batch.")):
                lines += [f"# HELP leanformers_{name} {text}", f"# TYPE leanformers_{name} {kind}",
                          f"leanformers_{name} {value}"]
            for name, histogram in self.histograms.items():
                full = f"leanformers_{name}" if name == "batch_size" else f"leanformers_{name}_seconds".replace(
                    "_seconds_seconds", "_seconds")
                lines += [f"# HELP {full} {_HELP[name]}", f"# TYPE {full} histogram"]
                cumulative = 0
                for bound, count in zip((*histogram.bounds, "+Inf"), histogram.counts):
                    cumulative += count
                    lines.append(f'{full}_bucket{{le="{bound}"}} {cumulative}')
                lines += [f"{full}_sum {histogram.total}", f"{full}_count {histogram.count}"]
        return "\n".join(lines) + "\n"
