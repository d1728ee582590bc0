"""Triton's official Python HTTP client, unmodified, against onnx-serverless (started by interop/run.ts).

Usage: triton_checks.py <host:port> <jpeg>. Prints one line per check and the count; exits 1 if any check failed.
Models (seeded by run.ts): id-<datatype> identity [-1] for every datatype, id-fp32-2d identity [-1, 4],
flowers, a ZipMap classifier (float_input [-1, 4] -> output_label BYTES, output_probability FP32 [-1, 3]), and
image-gain (images FP32 [-1, 3, 64, 64] x gain FP32 [1] -> y), whose catalog entry declares letterbox preprocessing
of images to 64 x 64; <jpeg> is a 48 x 32 JPEG of one colour (200, 100, 50).
"""
import asyncio
import gzip
import sys
import traceback
import zlib

import numpy as np
import tritonclient.http as httpclient
import tritonclient.http.aio as aioclient
from tritonclient.utils import InferenceServerException

URL = sys.argv[1]
with open(sys.argv[2], "rb") as jpeg_file:
    JPEG = jpeg_file.read()
LABELS = ["setosa", "versicolor", "virginica"]
results = []


def check(name):
    """Runs the decorated function at once as one named check."""

    def run(fn):
        try:
            fn()
            results.append((name, None))
            print(f"PASS {name}", flush=True)
        except Exception as error:  # noqa: BLE001 - every failure is reported, none stops the suite
            detail = f"{type(error).__name__}: {error}"
            results.append((name, detail))
            print(f"FAIL {name}: {detail}", flush=True)
            if not isinstance(error, AssertionError):
                traceback.print_exc()
        return fn

    return run


def expect_error(call, status, fragment):
    """The call must raise InferenceServerException with the server's status and message."""
    try:
        call()
    except InferenceServerException as error:
        assert error.status() == str(status), f"status {error.status()} != {status}: {error.message()}"
        assert fragment in error.message(), f"{fragment!r} not in {error.message()!r}"
        return error
    raise AssertionError("no error raised")


def same(actual, expected):
    """Values and dtype-independent equality; NaN equals NaN, -0.0 keeps its sign; BYTES compared as bytes."""
    assert actual is not None, "output missing"
    assert list(actual.shape) == list(expected.shape), f"shape {actual.shape} != {expected.shape}"
    if expected.dtype == np.object_:
        as_bytes = [a if isinstance(a, bytes) else str(a).encode() for a in actual.flatten()]
        assert as_bytes == list(expected.flatten()), f"{as_bytes} != {list(expected.flatten())}"
        return
    assert actual.dtype == expected.dtype, f"dtype {actual.dtype} != {expected.dtype}"
    if expected.dtype.kind == "f":
        assert np.array_equal(actual, expected, equal_nan=True), f"{actual} != {expected}"
        assert np.array_equal(np.signbit(actual), np.signbit(expected)), f"signs differ: {actual} vs {expected}"
    else:
        assert np.array_equal(actual, expected), f"{actual} != {expected}"


SAMPLES = {
    "BOOL": np.array([True, False, True], dtype=np.bool_),
    "UINT8": np.array([0, 1, 255], dtype=np.uint8),
    "UINT16": np.array([0, 1, 65535], dtype=np.uint16),
    "UINT32": np.array([0, 1, 4294967295], dtype=np.uint32),
    "UINT64": np.array([0, 9007199254740993, 18446744073709551615], dtype=np.uint64),
    "INT8": np.array([-128, 0, 127], dtype=np.int8),
    "INT16": np.array([-32768, 0, 32767], dtype=np.int16),
    "INT32": np.array([-2147483648, 0, 2147483647], dtype=np.int32),
    "INT64": np.array([-9223372036854775808, 9007199254740993, 9223372036854775807], dtype=np.int64),
    "FP16": np.array([-0.0, 1.5, 65504, np.inf], dtype=np.float16),
    "FP32": np.array([np.nan, np.inf, -np.inf, -0.0, 3.4028235e38, 1e-45], dtype=np.float32),
    "FP64": np.array([np.nan, -np.inf, -0.0, 1.7976931348623157e308, 5e-324], dtype=np.float64),
    "BYTES": np.array([b"", "h\u00e9llo".encode(), "\U0001F600".encode(), b"tab\there"], dtype=np.object_),
}

client = httpclient.InferenceServerClient(URL, concurrency=2)


def identity(datatype, data, binary_in, binary_out, **options):
    model = f"id-{datatype.lower()}"
    tensor = httpclient.InferInput("input", list(data.shape), datatype)
    tensor.set_data_from_numpy(data, binary_data=binary_in)
    outputs = [httpclient.InferRequestedOutput("output", binary_data=binary_out)]
    return client.infer(model, [tensor], outputs=outputs, **options)


# Images in BYTES elements (numpy object arrays of bytes, as the client sends BYTES) ----------------------------------

def image_gain(images, gain):
    tensor = httpclient.InferInput("images", [len(images)], "BYTES")
    tensor.set_data_from_numpy(np.array(images, dtype=np.object_), binary_data=True)
    factor = httpclient.InferInput("gain", [1], "FP32")
    factor.set_data_from_numpy(np.array([gain], dtype=np.float32), binary_data=True)
    return client.infer("image-gain", [tensor, factor], outputs=[httpclient.InferRequestedOutput("y")])


def expect_jpeg_tensor(plane, gain):
    """The 48 x 32 JPEG letterboxed at scale 1 in 64 x 64: rows 16-47, columns 8-55; grey 114 around it."""
    for channel, value in enumerate((200, 100, 50)):
        inside = plane[channel, 16:48, 8:56] * 255 / gain
        assert np.abs(inside - value).max() <= 2, f"channel {channel}: {inside.min()}..{inside.max()} != {value}"
        assert np.all(plane[channel, :16, :] == np.float32(np.float32(114 / 255) * gain)), "padding is not 114"


@check("image: a JPEG in a BYTES element (np.object_ of bytes) next to an FP32 input; parameters.image")
def _():
    result = image_gain([JPEG], 2.0)
    y = result.as_numpy("y")
    assert y.shape == (1, 3, 64, 64), y.shape
    expect_jpeg_tensor(y[0], 2.0)
    placement = {"original_size": [32, 48], "scale": 1, "pad": [16, 8], "size": [64, 64]}
    parameters = result.get_response()["parameters"]
    assert parameters == {"image": placement, "images": {"images": [placement]}}, parameters


@check("image: a batch of two JPEGs in one BYTES tensor [2]; the model metadata shows the catalog's preprocess")
def _():
    y = image_gain([JPEG, JPEG], 0.5).as_numpy("y")
    assert y.shape == (2, 3, 64, 64), y.shape
    expect_jpeg_tensor(y[0], 0.5)
    expect_jpeg_tensor(y[1], 0.5)
    declared = client.get_model_metadata("image-gain")["parameters"]["preprocess"]["images"]["images"]
    assert declared["size"] == [64, 64] and declared["resize"] == "letterbox", declared


@check("image: bytes that are not an image are a 400 naming the input and element")
def _():
    expect_error(lambda: image_gain([b"GIF89a not really"], 1.0), 400, 'input "images", BYTES element 0')


# Server and model description -------------------------------------------------------------------------------------

@check("server live, ready")
def _():
    assert client.is_server_live() and client.is_server_ready()


@check("server metadata advertises only served extensions")
def _():
    metadata = client.get_server_metadata()
    assert metadata["name"] == "onnx-serverless", metadata
    assert set(metadata["extensions"]) == {"binary_tensor_data", "classification", "model_configuration", "classification_zipmap"}, metadata


@check("model metadata and readiness")
def _():
    metadata = client.get_model_metadata("flowers")
    assert metadata["platform"] == "onnxruntime_onnx"
    assert metadata["inputs"] == [{"name": "float_input", "datatype": "FP32", "shape": [-1, 4]}], metadata["inputs"]
    assert client.is_model_ready("flowers") and client.is_model_ready("flowers", "1")
    assert not client.is_model_ready("no-such-model")


@check("model config (get_model_config), latest and pinned")
def _():
    config = client.get_model_config("flowers")
    assert config == client.get_model_config("flowers", "1")
    assert config["name"] == "flowers" and config["platform"] == "onnxruntime_onnx", config
    assert config["max_batch_size"] > 0, config
    assert config["input"] == [{"name": "float_input", "data_type": "TYPE_FP32", "dims": [4]}], config["input"]
    assert [o["data_type"] for o in config["output"]] == ["TYPE_STRING", "TYPE_FP32"], config["output"]
    for datatype in SAMPLES:
        model_config = client.get_model_config(f"id-{datatype.lower()}")
        assert model_config["input"][0]["data_type"] == ("TYPE_STRING" if datatype == "BYTES" else f"TYPE_{datatype}")


@check("model config of an unknown model surfaces the server's 404")
def _():
    expect_error(lambda: client.get_model_config("no-such-model"), 404, "no-such-model")


@check("repository index")
def _():
    index = client.get_model_repository_index()
    names = {row["name"] for row in index}
    assert {"flowers", "id-fp32"} <= names, names


@check("load_model / unload_model: the server's reason, not a bare 404")
def _():
    expect_error(lambda: client.load_model("flowers"), 400, "not loaded on request")
    expect_error(lambda: client.unload_model("flowers"), 400, "not unloaded on request")


# Every datatype, JSON and binary both ways -------------------------------------------------------------------------

for datatype, sample in SAMPLES.items():
    for binary_in in (False, True):
        for binary_out in (False, True):
            name = f"{datatype} {'binary' if binary_in else 'JSON'} in, {'binary' if binary_out else 'JSON'} out"

            @check(name)
            def _(datatype=datatype, sample=sample, binary_in=binary_in, binary_out=binary_out):
                result = identity(datatype, sample, binary_in, binary_out)
                same(result.as_numpy("output"), sample)
                response = result.get_response()
                assert response["model_name"] == f"id-{datatype.lower()}" and response["model_version"] == "1"


@check("2-D FP32, outputs default to binary when none are listed")
def _():
    data = np.arange(12, dtype=np.float32).reshape(3, 4) / 8
    tensor = httpclient.InferInput("input", [3, 4], "FP32")
    tensor.set_data_from_numpy(data, binary_data=False)
    result = client.infer("id-fp32-2d", [tensor], request_id="r-1")
    same(result.as_numpy("output"), data)
    assert result.get_response()["id"] == "r-1"
    assert result.get_output("output")["parameters"]["binary_data_size"] == 48


# Subsets of outputs -----------------------------------------------------------------------------------------------

ROWS = np.array([[5.1, 3.5, 1.4, 0.2], [6.3, 3.3, 6.0, 2.5], [5.9, 3.0, 4.2, 1.5]], dtype=np.float32)


def flowers(outputs, binary_in=True, **options):
    tensor = httpclient.InferInput("float_input", list(ROWS.shape), "FP32")
    tensor.set_data_from_numpy(ROWS, binary_data=binary_in)
    return client.infer("flowers", [tensor], outputs=outputs, **options)


@check("a subset of outputs: only the one asked for comes back")
def _():
    result = flowers([httpclient.InferRequestedOutput("output_label", binary_data=False)])
    assert [o["name"] for o in result.get_response()["outputs"]] == ["output_label"]
    assert result.as_numpy("output_probability") is None
    labels = result.as_numpy("output_label")
    assert labels.shape == (3,) and all(label in LABELS for label in labels), labels


@check("both outputs, one JSON and one binary")
def _():
    result = flowers([
        httpclient.InferRequestedOutput("output_label", binary_data=True),
        httpclient.InferRequestedOutput("output_probability", binary_data=False),
    ])
    probabilities = result.as_numpy("output_probability")
    assert probabilities.shape == (3, 3) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-5), probabilities
    labels = [label.decode() for label in result.as_numpy("output_label")]
    assert labels == [LABELS[i] for i in probabilities.argmax(axis=1)], (labels, probabilities)


# Classification ---------------------------------------------------------------------------------------------------

def top_classes(probabilities, k):
    rows = []
    for row in probabilities:
        order = sorted(range(len(row)), key=lambda i: (-row[i], i))[:k]
        rows.append([f"{float(row[i]):f}:{i}:{LABELS[i]}".encode() for i in order])
    return np.array(rows, dtype=np.object_)


for binary_out in (False, True):
    @check(f"classification (class_count=2), {'binary' if binary_out else 'JSON'} output: Triton's score:index:label")
    def _(binary_out=binary_out):
        probabilities = flowers([httpclient.InferRequestedOutput("output_probability")]).as_numpy("output_probability")
        result = flowers([httpclient.InferRequestedOutput("output_probability", binary_data=binary_out, class_count=2)])
        same(result.as_numpy("output_probability"), top_classes(probabilities, 2))


@check("classification with class_count over the number of classes gives every class")
def _():
    probabilities = flowers([httpclient.InferRequestedOutput("output_probability")]).as_numpy("output_probability")
    result = flowers([httpclient.InferRequestedOutput("output_probability", class_count=10)])
    same(result.as_numpy("output_probability"), top_classes(probabilities, 3))


@check("classification of a BYTES output is refused with the server's reason")
def _():
    expect_error(lambda: flowers([httpclient.InferRequestedOutput("output_label", class_count=1)]), 400, "no scores to classify")


# Compression ------------------------------------------------------------------------------------------------------

BIG = (np.arange(4 * 300, dtype=np.float32).reshape(300, 4) % 17) / 3

for request_coding in (None, "gzip", "deflate"):
    for response_coding in (None, "gzip", "deflate"):
        for binary in (False, True):
            if request_coding is None and response_coding is None:
                continue
            label = f"compression: request {request_coding or 'plain'}, response {response_coding or 'plain'}, {'binary' if binary else 'JSON'}"

            @check(label)
            def _(request_coding=request_coding, response_coding=response_coding, binary=binary):
                tensor = httpclient.InferInput("input", list(BIG.shape), "FP32")
                tensor.set_data_from_numpy(BIG, binary_data=binary)
                outputs = [httpclient.InferRequestedOutput("output", binary_data=binary)]
                result = client.infer(
                    "id-fp32-2d", [tensor], outputs=outputs,
                    request_compression_algorithm=request_coding, response_compression_algorithm=response_coding,
                )
                same(result.as_numpy("output"), BIG)


@check("compression: the server really compresses (raw HTTP, Accept-Encoding gzip)")
def _():
    tensor = httpclient.InferInput("input", list(BIG.shape), "FP32")
    tensor.set_data_from_numpy(BIG, binary_data=False)
    body, json_size = httpclient._utils._get_inference_request(
        inputs=[tensor], request_id="", outputs=None, sequence_id=0, sequence_start=False, sequence_end=False,
        priority=0, timeout=None, custom_parameters=None)
    headers = {"Accept-Encoding": "gzip", "Content-Encoding": "deflate"}
    if json_size is not None:
        headers["Inference-Header-Content-Length"] = str(json_size)
    response = client._post("v2/models/id-fp32-2d/infer", zlib.compress(body), headers, None)
    assert response.status_code == 200, response.read()
    assert response.get("Content-Encoding") == "gzip", dict(response.items())
    raw = response.read()
    header_length = int(response.get("Inference-Header-Content-Length"))
    assert len(gzip.decompress(raw)) == header_length + BIG.nbytes


@check("compression: a gzip bomb is a 413 with the limit named")
def _():
    bomb = gzip.compress(b" " * (64 * 1024 * 1024))
    response = client._post("v2/models/id-fp32-2d/infer", bomb, {"Content-Encoding": "gzip"}, None)
    assert response.status_code == 413, response.status_code
    assert b"limits.maxBodyBytes" in response.read()


# async_infer ------------------------------------------------------------------------------------------------------

@check("async_infer: two requests in flight, each its own answer")
def _():
    pending = []
    for scale in (1, 2):
        data = BIG[:5] * scale
        tensor = httpclient.InferInput("input", [5, 4], "FP32")
        tensor.set_data_from_numpy(data, binary_data=scale == 1)
        pending.append((client.async_infer("id-fp32-2d", [tensor]), data))
    for request, data in pending:
        same(request.get_result().as_numpy("output"), data)


# Errors: the client must surface the server's message -------------------------------------------------------------

@check("error: unknown model -> 404 with the server's message")
def _():
    tensor = httpclient.InferInput("input", [1], "FP32")
    tensor.set_data_from_numpy(np.array([1], dtype=np.float32))
    expect_error(lambda: client.infer("no-such-model", [tensor]), 404, "no-such-model")


@check("error: wrong shape -> 400 naming the input and the shapes")
def _():
    tensor = httpclient.InferInput("input", [2, 3], "FP32")
    tensor.set_data_from_numpy(np.zeros((2, 3), dtype=np.float32), binary_data=False)
    expect_error(lambda: client.infer("id-fp32-2d", [tensor]), 400, 'input "input" has shape [2, 3]')


@check("error: BYTES with NUL -> 400 in JSON and binary, never cut")
def _():
    expect_error(lambda: identity("BYTES", np.array([b"ab\x00cd"], dtype=np.object_), True, True), 400, "NUL")
    # JSON needs str elements: the client decodes bytes as UTF-8 and sends "\u0000".
    expect_error(lambda: identity("BYTES", np.array(["ab\x00cd"], dtype=np.object_), False, False), 400, "NUL")
    same(identity("BYTES", np.array([b"abcd"], dtype=np.object_), True, True).as_numpy("output"), np.array([b"abcd"], dtype=np.object_))


@check("error: out-of-range INT64 JSON number quoted as sent")
def _():
    tensor = httpclient.InferInput("input", [1], "INT64")
    tensor._data = [9223372036854775808]  # what a Python int past int64 becomes in the client's JSON
    expect_error(lambda: client.infer("id-int64", [tensor]), 400, "9223372036854775808, outside the INT64 range")


@check("sequence_id / sequence_start / sequence_end on a stateless model: served as an ordinary request, as Triton")
def _():
    for sequence in ({"sequence_id": 5, "sequence_start": True}, {"sequence_id": "correlation-a", "sequence_end": True}):
        tensor = httpclient.InferInput("input", [1, 4], "FP32")
        tensor.set_data_from_numpy(BIG[:1])
        result = client.infer("id-fp32-2d", [tensor], **sequence)
        same(result.as_numpy("output"), BIG[:1])


@check("statistics are not served: the client gets the server's 404")
def _():
    expect_error(lambda: client.get_inference_statistics("flowers"), 404, "no route")


@check("the next valid request after every error is served")
def _():
    same(identity("FP32", SAMPLES["FP32"], True, True).as_numpy("output"), SAMPLES["FP32"])


# tritonclient.http.aio (aiohttp: application/octet-stream even for JSON) --------------------------------------------

async def aio_checks():
    async with aioclient.InferenceServerClient(URL) as aio:
        checks = []

        async def json_infer():
            tensor = aioclient.InferInput("input", [3], "INT64")
            tensor.set_data_from_numpy(SAMPLES["INT64"], binary_data=False)
            result = await aio.infer("id-int64", [tensor], outputs=[aioclient.InferRequestedOutput("output", binary_data=False)])
            same(result.as_numpy("output"), SAMPLES["INT64"])

        async def binary_infer():
            tensor = aioclient.InferInput("input", [4], "FP16")
            tensor.set_data_from_numpy(SAMPLES["FP16"])
            result = await aio.infer("id-fp16", [tensor])
            same(result.as_numpy("output"), SAMPLES["FP16"])

        async def compressed():
            for request_coding, response_coding in (("gzip", "deflate"), ("deflate", "gzip")):
                tensor = aioclient.InferInput("input", list(BIG.shape), "FP32")
                tensor.set_data_from_numpy(BIG, binary_data=False)
                result = await aio.infer(
                    "id-fp32-2d", [tensor], outputs=[aioclient.InferRequestedOutput("output", binary_data=False)],
                    request_compression_algorithm=request_coding, response_compression_algorithm=response_coding)
                same(result.as_numpy("output"), BIG)

        async def metadata():
            assert await aio.is_server_live()
            config = await aio.get_model_config("id-bytes")
            assert config["input"][0]["data_type"] == "TYPE_STRING", config

        async def error():
            tensor = aioclient.InferInput("input", [1, 3], "FP32")
            tensor.set_data_from_numpy(np.zeros((1, 3), dtype=np.float32), binary_data=False)
            try:
                await aio.infer("id-fp32-2d", [tensor])
            except InferenceServerException as e:
                assert e.status() == "400" and 'input "input" has shape [1, 3]' in e.message(), e
                return
            raise AssertionError("no error raised")

        async def repository_index():
            # aiohttp sends Accept-Encoding: gzip on every request and the client decodes only inference answers:
            # a compressed index failed here with UnicodeDecodeError.
            index = await aio.get_model_repository_index()
            assert {"flowers", "id-fp32"} <= {row["name"] for row in index}, index
            metadata = await aio.get_model_metadata("image-gain")
            assert [tensor["name"] for tensor in metadata["inputs"]] == ["images", "gain"], metadata
            assert (await aio.get_server_metadata())["name"] == "onnx-serverless"
            response = await aio._post("v2/repository/index", b"{}", None, None)
            assert response.status == 200 and "Content-Encoding" not in response.headers, dict(response.headers)
            try:
                await aio.get_model_metadata("no-such-model")
            except InferenceServerException as e:
                assert e.status() == "404" and "no-such-model" in e.message(), e
            else:
                raise AssertionError("no error raised")
            # An error long enough to be compressed, were errors compressed: the client would not decode it.
            long_name = "x" * 2000
            tensor = aioclient.InferInput(long_name, [1, 4], "FP32")
            tensor.set_data_from_numpy(BIG[:1], binary_data=False)
            try:
                await aio.infer("id-fp32-2d", [tensor], response_compression_algorithm="gzip")
            except InferenceServerException as e:
                assert e.status() == "400" and f'unknown input "{long_name}"' in e.message(), e.message()[:200]
            else:
                raise AssertionError("no error raised")

        async def sequence():
            tensor = aioclient.InferInput("input", [1, 4], "FP32")
            tensor.set_data_from_numpy(BIG[:1])
            result = await aio.infer("id-fp32-2d", [tensor], sequence_id=7, sequence_start=True, sequence_end=False)
            same(result.as_numpy("output"), BIG[:1])

        async def classification():
            tensor = aioclient.InferInput("float_input", list(ROWS.shape), "FP32")
            tensor.set_data_from_numpy(ROWS, binary_data=False)
            plain = await aio.infer("flowers", [tensor], outputs=[aioclient.InferRequestedOutput("output_probability")])
            result = await aio.infer("flowers", [tensor], outputs=[aioclient.InferRequestedOutput("output_probability", class_count=1)])
            same(result.as_numpy("output_probability"), top_classes(plain.as_numpy("output_probability"), 1))

        for name, fn in (("aio: JSON infer (octet-stream JSON body)", json_infer), ("aio: binary infer", binary_infer),
                         ("aio: compression both ways", compressed), ("aio: server and model config", metadata),
                         ("aio: error surfaces the server's message", error), ("aio: classification", classification),
                         ("aio: repository index, metadata and errors (never compressed)", repository_index),
                         ("aio: sequence_id on a stateless model", sequence)):
            checks.append((name, fn))
        for name, fn in checks:
            try:
                await fn()
                results.append((name, None))
                print(f"PASS {name}", flush=True)
            except Exception as error:  # noqa: BLE001
                results.append((name, f"{type(error).__name__}: {error}"))
                print(f"FAIL {name}: {type(error).__name__}: {error}", flush=True)


asyncio.run(aio_checks())
client.close()

failed = [name for name, detail in results if detail is not None]
print(f"\n[interop] {len(results) - len(failed)}/{len(results)} checks passed")
for name in failed:
    print(f"[interop] failed: {name}")
sys.exit(1 if failed else 0)
