/* The backward engine's inner loop in C: nurinet.autograd.engine._Pass.drain_arrays, line for line.
 *
 * A small network's training step is mostly bookkeeping: popping graph nodes off the heap, calling
 * each node's backward_arrays, checking the gradients it returns and routing them to the inputs'
 * nodes or leaves. In Python that costs about 3 microseconds a node; here the same steps are calls
 * into the C API. Everything out of the ordinary (a hook, retain_grad, a captured output, several
 * outputs, a gradient of the wrong shape, an in-place change since the forward) is handed back to
 * the Python methods that deal with it, so the semantics are those of drain_arrays; the tests run the
 * engine's suite through both.
 *
 * Built by nurinet._runtime.extension as a CPython extension module named _nurinet_engine.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#ifndef Py_T_OBJECT_EX /* before 3.12: the member types and PyMemberDef are in structmember.h */
#include <structmember.h>
#define Py_T_OBJECT_EX T_OBJECT_EX
#endif

/* Set once by configure(): the Tensor class, the version clock and the Python helpers. */
static PyTypeObject *tensor_class, *ndarray_class;
static PyObject *clock_obj, *check_versions, *check_count, *check_gradient_array,
    *heap_push, *heap_pop;

static PyObject *s_heap, *s_pending, *s_leaf_grads, *s_captured, *s_counter, *s_retain_graph, *s_step,
    *s_enqueue, *s_backward_arrays, *s_recorded_at, *s_ticks, *s_inputs, *s_release, *s_requires_grad,
    *s_array, *s_shape, *s_dtype, *s_creator, *s_output_index, *s_outputs, *s_generation, *s_hooks,
    *s_retains_grad, *s_observed;

/* Declared with the parts that use them, below. */
static PyObject *s_forward, *s_enabled, *s_needs_input_grad, *s_owned, *s_finish_leaf, *s_base, *s_link, *s_record,
    *s_NATIVE, *zero, *one;
#define SLOT_NAMES 10
static PyObject *slot_names[SLOT_NAMES];

static int intern_names(void) {
#define NAME(var, text) if (!(var = PyUnicode_InternFromString(text))) return -1;
    NAME(s_heap, "heap") NAME(s_pending, "pending") NAME(s_leaf_grads, "leaf_grads")
    NAME(s_captured, "captured") NAME(s_counter, "counter") NAME(s_retain_graph, "retain_graph")
    NAME(s_step, "step") NAME(s_enqueue, "enqueue") NAME(s_backward_arrays, "backward_arrays")
    NAME(s_recorded_at, "recorded_at") NAME(s_ticks, "ticks") NAME(s_inputs, "inputs")
    NAME(s_release, "release") NAME(s_requires_grad, "_requires_grad") NAME(s_array, "array")
    NAME(s_shape, "shape") NAME(s_dtype, "dtype") NAME(s_creator, "creator")
    NAME(s_output_index, "output_index") NAME(s_outputs, "outputs") NAME(s_generation, "generation")
    NAME(s_hooks, "_hooks") NAME(s_retains_grad, "retains_grad") NAME(s_observed, "observed")
    NAME(s_forward, "forward") NAME(s_enabled, "enabled") NAME(s_needs_input_grad, "needs_input_grad")
    NAME(s_owned, "owned") NAME(s_finish_leaf, "finish_leaf") NAME(s_base, "base") NAME(s_link, "_link")
    NAME(s_record, "_record") NAME(s_NATIVE, "NATIVE")
    static const char *slots[SLOT_NAMES] = {"array", "grad", "creator", "generation", "output_index", "name",
                                            "_hooks", "retains_grad", "_version", "_requires_grad"};
    for (int i = 0; i < SLOT_NAMES; i++) NAME(slot_names[i], slots[i])
#undef NAME
    if (!(zero = PyLong_FromLong(0)) || !(one = PyLong_FromLong(1))) return -1;
    return 0;
}

/* Whether configure() has run; else raises. */
static int configured(void) {
    if (!tensor_class) PyErr_SetString(PyExc_RuntimeError, "nurinet engine: configure() was not called");
    return tensor_class != NULL;
}

/* The truth of attribute `name` of `obj`: 1, 0, or -1 with an exception set. */
static int attribute_true(PyObject *obj, PyObject *name) {
    PyObject *value = PyObject_GetAttr(obj, name);
    if (!value) return -1;
    int truth = PyObject_IsTrue(value);
    Py_DECREF(value);
    return truth;
}

/* Whether the node must go to _Pass.step: no array backward, several outputs, or an output that is
 * watched (hook, retain_grad) or captured by nurinet.grad. 1, 0, or -1 with an exception set. */
static int needs_step(PyObject *backward, PyObject *out, PyObject *captured) {
    if (backward == Py_None || PyList_CheckExact(out)) return 1;
    if (out == Py_None) return 0;
    int observed = attribute_true((PyObject *)tensor_class, s_observed);
    if (observed != 0) {
        if (observed < 0) return -1;
        int watched = attribute_true(out, s_hooks);
        if (watched == 0) watched = attribute_true(out, s_retains_grad);
        if (watched != 0) return watched;
    }
    if (PyDict_GET_SIZE(captured) == 0) return 0;
    PyObject *key = PyLong_FromVoidPtr(out);
    if (!key) return -1;
    int found = PyDict_Contains(captured, key);
    Py_DECREF(key);
    return found;
}

/* fn's gradient slots, taken out of `pending` (a new reference), or NULL with an exception set. */
static PyObject *take_slots(PyObject *pending, PyObject *fn) {
    PyObject *slots = PyDict_GetItemWithError(pending, fn);
    if (!slots) {
        if (!PyErr_Occurred()) PyErr_SetObject(PyExc_KeyError, fn);
        return NULL;
    }
    Py_INCREF(slots);
    if (PyDict_DelItem(pending, fn) < 0) {
        Py_DECREF(slots);
        return NULL;
    }
    return slots;
}

/* What backward_arrays returned, as a tuple (a new reference). */
static PyObject *as_tuple(PyObject *result) {
    if (PyTuple_CheckExact(result)) return result;
    PyObject *tuple = PyList_Check(result) ? PyList_AsTuple(result) : PyTuple_Pack(1, result);
    Py_DECREF(result);
    return tuple;
}

/* Whether gx is an array of data's type, shape and dtype (drain_arrays' inline check). */
static int matches_input(PyObject *gx, PyObject *data) {
    if (Py_TYPE(gx) != Py_TYPE(data)) return 0;
    PyObject *a = PyObject_GetAttr(gx, s_shape), *b = a ? PyObject_GetAttr(data, s_shape) : NULL;
    int same = b ? PyObject_RichCompareBool(a, b, Py_EQ) : -1;
    Py_XDECREF(a);
    Py_XDECREF(b);
    if (same != 1) return same;
    a = PyObject_GetAttr(gx, s_dtype);
    b = a ? PyObject_GetAttr(data, s_dtype) : NULL;
    same = !b ? -1 : (a == b ? 1 : PyObject_RichCompareBool(a, b, Py_EQ));
    Py_XDECREF(a);
    Py_XDECREF(b);
    return same;
}

/* slots[x.output_index] <- gx, or the sum with the gradient already there (Python's indexing rules).
 * `slots` and the gradient already there are held here: the sum may run Python code. */
static int accumulate(PyObject *slots, PyObject *x, PyObject *gx) {
    PyObject *position = NULL, *current = NULL, *value = NULL;
    int status = -1;
    Py_INCREF(slots);
    if (!(position = PyObject_GetAttr(x, s_output_index)) || !(current = PyObject_GetItem(slots, position)))
        goto out;
    if (current == Py_None) {
        Py_INCREF(gx);
        value = gx;
    } else if (!(value = PyNumber_Add(current, gx))) {
        goto out;
    }
    status = PyObject_SetItem(slots, position, value);
out:
    Py_XDECREF(value); Py_XDECREF(current); Py_XDECREF(position); Py_DECREF(slots);
    return status;
}

/* A leaf's gradient: leaf_grads[id(x)] = (x, gx), summed with what it had. */
static int add_leaf(PyObject *leaf_grads, PyObject *x, PyObject *gx) {
    PyObject *key = PyLong_FromVoidPtr(x);
    if (!key) return -1;
    PyObject *known = PyDict_GetItemWithError(leaf_grads, key), *value = NULL;
    if (known) {
        Py_INCREF(known);  /* the sum may run Python code */
        PyObject *sum = PyNumber_Add(PyTuple_GET_ITEM(known, 1), gx);
        Py_DECREF(known);
        if (sum) {
            value = PyTuple_Pack(2, x, sum);
            Py_DECREF(sum);
        }
    } else if (!PyErr_Occurred()) {
        value = PyTuple_Pack(2, x, gx);
    }
    int status = value ? PyDict_SetItem(leaf_grads, key, value) : -1;
    Py_XDECREF(value);
    Py_DECREF(key);
    return status;
}

/* What the node loop reads of the pass, looked up once per drain (drain_arrays hoists the same). */
typedef struct {
    PyObject *self, *heap, *pending, *leaf_grads, *captured, *counter;
    int retain;
} walk_t;

/* Enqueue a one-output node with its first gradient: pending[creator] = [gx] and a heap entry
 * (-generation, next(counter), creator, its output), as drain_arrays does. */
static int push_node(const walk_t *w, PyObject *creator, PyObject *outputs, PyObject *gx) {
    PyObject *slots = PyList_New(1), *generation = NULL, *negated = NULL, *order = NULL, *held = NULL,
             *entry = NULL, *done = NULL;
    int status = -1;
    if (!slots) return -1;
    Py_INCREF(gx);
    PyList_SET_ITEM(slots, 0, gx);
    if (PyDict_SetItem(w->pending, creator, slots) < 0) goto out;
    if (!(generation = PyObject_GetAttr(creator, s_generation)) || !(negated = PyNumber_Negative(generation)))
        goto out;
    if (!(order = PyIter_Next(w->counter))) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_RuntimeError, "nurinet engine: the counter ran out");
        goto out;
    }
    if (!(held = PyObject_CallNoArgs(PyTuple_GET_ITEM(outputs, 0)))) goto out;
    if (!(entry = PyTuple_Pack(4, negated, order, creator, held))) goto out;
    done = PyObject_CallFunctionObjArgs(heap_push, w->heap, entry, NULL);
    status = done ? 0 : -1;
out:
    Py_XDECREF(done); Py_XDECREF(entry); Py_XDECREF(held); Py_XDECREF(order); Py_XDECREF(negated);
    Py_XDECREF(generation); Py_DECREF(slots);
    return status;
}

/* Send gx to input x of fn: to x's leaf gradient, to its creator's pending slots, or enqueue the
 * creator. `index` is x's position among fn's inputs (for the error messages). */
static int route(const walk_t *w, PyObject *fn, Py_ssize_t index, PyObject *x, PyObject *gx) {
    PyObject *data = PyObject_GetAttr(x, s_array), *checked = NULL, *creator = NULL;
    int status = -1;
    if (!data) return -1;
    int fits = matches_input(gx, data);
    if (fits < 0) goto out;
    if (!fits) {  /* the Python check sums a broadcast gradient back, or raises */
        PyObject *position = PyLong_FromSsize_t(index);
        if (!position) goto out;
        checked = PyObject_CallFunctionObjArgs(check_gradient_array, fn, position, x, gx, NULL);
        Py_DECREF(position);
        if (!checked) goto out;
        gx = checked;
    }
    if (!(creator = PyObject_GetAttr(x, s_creator))) goto out;
    if (creator == Py_None) {
        status = add_leaf(w->leaf_grads, x, gx);
        goto out;
    }
    PyObject *slots = PyDict_GetItemWithError(w->pending, creator);
    if (slots) {
        status = accumulate(slots, x, gx);
        goto out;
    }
    if (PyErr_Occurred()) goto out;
    PyObject *outputs = PyObject_GetAttr(creator, s_outputs), *inputs = NULL;
    if (!outputs) goto out;
    if (PyTuple_CheckExact(outputs) && PyTuple_GET_SIZE(outputs) == 1) {
        inputs = PyObject_GetAttr(creator, s_inputs);
        if (!inputs) {
            Py_DECREF(outputs);
            goto out;
        }
    }
    if (inputs && inputs != Py_None) {
        status = push_node(w, creator, outputs, gx);
    } else {  /* several outputs, or a freed graph: _Pass.enqueue makes the slots or raises */
        PyObject *made = PyObject_CallMethodOneArg(w->self, s_enqueue, creator);
        status = made ? accumulate(made, x, gx) : -1;
        Py_XDECREF(made);
    }
    Py_XDECREF(inputs);
    Py_DECREF(outputs);
out:
    Py_XDECREF(creator);
    Py_XDECREF(checked);
    Py_DECREF(data);
    return status;
}

/* Run one node inline: its backward_arrays on its one gradient, then the gradients to its inputs. */
static int run_node(const walk_t *w, PyObject *fn, PyObject *backward) {
    PyObject *recorded = PyObject_GetAttr(fn, s_recorded_at), *ticks = NULL, *slots = NULL,
             *result = NULL, *inputs = NULL, *given = NULL;
    int status = -1;
    if (!recorded || !(ticks = PyObject_GetAttr(clock_obj, s_ticks))) goto out;
    int same = PyObject_RichCompareBool(recorded, ticks, Py_EQ);
    if (same < 0) goto out;
    if (!same) {  /* something changed in place since fn ran: was it fn's input or output? */
        PyObject *checked = PyObject_CallOneArg(check_versions, fn);
        if (!checked) goto out;
        Py_DECREF(checked);
    }
    if (!(slots = take_slots(w->pending, fn))) goto out;
    PyObject *gy = PySequence_GetItem(slots, 0);
    Py_CLEAR(slots);  /* the node's gradient lives no longer than its backward, as in Python */
    if (!gy) goto out;
    result = PyObject_CallOneArg(backward, gy);
    Py_DECREF(gy);
    if (!result || !(result = as_tuple(result))) goto out;
    if (!(given = PyObject_GetAttr(fn, s_inputs))) goto out;
    if (!(inputs = PySequence_Fast(given, "an op's inputs must be a sequence"))) goto out;
    Py_ssize_t count = PyTuple_GET_SIZE(result);
    if (count != PySequence_Fast_GET_SIZE(inputs)) {  /* check_count raises, naming the op */
        PyObject *checked = PyObject_CallFunctionObjArgs(check_count, fn, result, NULL);
        if (!checked) goto out;
        Py_DECREF(checked);
        if (count > PySequence_Fast_GET_SIZE(inputs)) {
            PyErr_SetString(PyExc_IndexError, "tuple index out of range");
            goto out;
        }
    }
    if (!w->retain) {  /* let go of fn's inputs now (see _Pass.step) */
        PyObject *released = PyObject_CallMethodNoArgs(fn, s_release);
        if (!released) goto out;
        Py_DECREF(released);
    }
    for (Py_ssize_t index = 0; index < count; index++) {
        PyObject *gx = PyTuple_GET_ITEM(result, index), *x = PySequence_Fast_GET_ITEM(inputs, index);
        if (gx == Py_None) continue;
        int needed = attribute_true(x, s_requires_grad);
        if (needed < 0) goto out;
        if (needed && route(w, fn, index, x, gx) < 0) goto out;
    }
    status = 0;
out:
    Py_XDECREF(inputs); Py_XDECREF(given); Py_XDECREF(result); Py_XDECREF(slots); Py_XDECREF(ticks);
    Py_XDECREF(recorded);
    return status;
}

/* drain(pass): run the pass's heap empty (nurinet.autograd.engine._Pass.drain_arrays). */
static PyObject *drain(PyObject *module, PyObject *self) {
    (void)module;
    if (!configured()) return NULL;
    walk_t w = {self, NULL, NULL, NULL, NULL, NULL, -1};
    PyObject *answer = NULL;
    if (!(w.heap = PyObject_GetAttr(self, s_heap)) || !(w.pending = PyObject_GetAttr(self, s_pending)) ||
        !(w.leaf_grads = PyObject_GetAttr(self, s_leaf_grads)) || !(w.captured = PyObject_GetAttr(self, s_captured)) ||
        !(w.counter = PyObject_GetAttr(self, s_counter)))
        goto out;
    if (!PyList_CheckExact(w.heap) || !PyDict_CheckExact(w.pending) || !PyDict_CheckExact(w.leaf_grads) ||
        !PyDict_CheckExact(w.captured) || !PyIter_Check(w.counter)) {
        PyErr_SetString(PyExc_TypeError,
                        "nurinet engine: the pass's heap, pending, leaf_grads, captured or counter has the wrong type");
        goto out;
    }
    if ((w.retain = attribute_true(self, s_retain_graph)) < 0) goto out;
    while (PyList_GET_SIZE(w.heap) > 0) {
        /* The entry holds the node's outputs until the node has run. */
        PyObject *entry = PyObject_CallOneArg(heap_pop, w.heap);
        if (!entry) goto out;
        if (!PyTuple_CheckExact(entry) || PyTuple_GET_SIZE(entry) != 4) {
            Py_DECREF(entry);
            PyErr_SetString(PyExc_TypeError, "nurinet engine: a heap entry is not (-generation, order, node, outputs)");
            goto out;
        }
        PyObject *fn = PyTuple_GET_ITEM(entry, 2), *out_ = PyTuple_GET_ITEM(entry, 3);
        PyObject *backward = PyObject_GetAttr(fn, s_backward_arrays);
        int status = -1;
        if (backward) {
            int slow = needs_step(backward, out_, w.captured);
            if (slow > 0) {
                PyObject *stepped = PyObject_CallMethodOneArg(self, s_step, fn);
                status = stepped ? 0 : -1;
                Py_XDECREF(stepped);
            } else if (slow == 0) {
                status = run_node(&w, fn, backward);
            }
            Py_DECREF(backward);
        }
        Py_DECREF(entry);
        if (status < 0) goto out;
    }
    answer = Py_None;
    Py_INCREF(answer);
out:
    Py_XDECREF(w.counter); Py_XDECREF(w.captured); Py_XDECREF(w.leaf_grads); Py_XDECREF(w.pending);
    Py_XDECREF(w.heap);
    return answer;
}

/* ----- Function.__call__ -------------------------------------------------------------------------
 * nurinet.autograd.function.Function.__call__ for its common case: every input a Tensor, and forward
 * returning one ndarray. Anything else goes to the Python code it follows (the fallbacks given to
 * configure_call), so both behave the same. Tensor's attributes are __slots__: they are read and
 * written here at their offsets, as the member descriptors would. */
static PyObject *grad_state, *python_call, *record_call, *unrecorded, *function_link, *function_record,
    *settings_dict;
static Py_ssize_t off_array, off_grad, off_creator, off_generation, off_output_index, off_name, off_hooks,
    off_retains_grad, off_version, off_requires_grad;
#define MAX_INPUTS 8
#define SLOT(obj, offset) (*(PyObject **)((char *)(obj) + (offset)))

static int slot_offset(PyTypeObject *type, PyObject *name, Py_ssize_t *offset) {
    PyObject *descr = PyDict_GetItemWithError(type->tp_dict, name);
    if (!descr || Py_TYPE(descr) != &PyMemberDescr_Type) {
        if (!PyErr_Occurred()) PyErr_Format(PyExc_TypeError, "nurinet engine: Tensor.%U is not a slot", name);
        return -1;
    }
    PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
    if (member->type != Py_T_OBJECT_EX) {
        PyErr_Format(PyExc_TypeError, "nurinet engine: Tensor.%U is not an object slot", name);
        return -1;
    }
    *offset = member->offset;
    return 0;
}

/* Store a new reference to value in obj's slot (dropping the old value). */
static void put(PyObject *obj, Py_ssize_t offset, PyObject *value) {
    PyObject *old = SLOT(obj, offset);
    Py_INCREF(value);
    SLOT(obj, offset) = value;
    Py_XDECREF(old);
}

/* Tensor._wrap(data, requires_grad): a Tensor around data with every slot _wrap sets. */
static PyObject *wrap(PyObject *data, PyObject *requires_grad) {
    PyObject *t = tensor_class->tp_alloc(tensor_class, 0);
    if (!t) return NULL;
    put(t, off_array, data);
    put(t, off_grad, Py_None);
    put(t, off_creator, Py_None);
    put(t, off_generation, zero);
    put(t, off_output_index, zero);
    put(t, off_name, Py_None);
    put(t, off_hooks, Py_None);
    put(t, off_retains_grad, Py_False);
    put(t, off_version, zero);
    put(t, off_requires_grad, requires_grad);
    return t;
}

/* Whether instances of `type` are Tensors whose slots read and written here mean what they mean on
 * Tensor: Tensor itself, or a subclass (Parameter) that overrides none of them and neither attribute
 * access nor assignment. Answers are remembered per type and version tag: a change to the class (a
 * property set on it later) gives it a new tag, so it is looked at again. */
#define REMEMBERED 8
static struct { PyTypeObject *type; unsigned int tag; } plain_types[REMEMBERED];
static int plain_next;

static int looked_plain(PyTypeObject *type) {
    if (type != tensor_class && !PyType_IsSubtype(type, tensor_class)) return 0;
    if (type->tp_getattro != tensor_class->tp_getattro || type->tp_setattro != tensor_class->tp_setattro)
        return 0;
    for (int i = 0; i < SLOT_NAMES; i++) {
        PyObject *mine = _PyType_Lookup(type, slot_names[i]);
        if (!mine || Py_TYPE(mine) != &PyMemberDescr_Type || mine != _PyType_Lookup(tensor_class, slot_names[i]))
            return 0;
    }
    return 1;
}

static int is_plain_tensor(PyTypeObject *type) {
    for (int i = 0; i < REMEMBERED; i++)
        if (plain_types[i].type == type && type->tp_version_tag != 0 && plain_types[i].tag == type->tp_version_tag)
            return 1;
    if (!looked_plain(type)) return 0;
    if (type->tp_version_tag != 0) {  /* _PyType_Lookup gave it one; without one, look again next time */
        Py_INCREF(type);
        Py_XDECREF((PyObject *)plain_types[plain_next].type);
        plain_types[plain_next].type = type;
        plain_types[plain_next].tag = type->tp_version_tag;
        plain_next = (plain_next + 1) % REMEMBERED;
    }
    return 1;
}

static void forget_plain_types(void) {
    for (int i = 0; i < REMEMBERED; i++) {
        Py_CLEAR(plain_types[i].type);
        plain_types[i].tag = 0;
    }
}

/* Function._link for a call whose inputs are `inputs`; returns their highest generation (a new
 * reference, compared as Python compares them), or NULL. */
static PyObject *link_inputs(PyObject *self, PyObject *inputs, PyObject *needs) {
    PyObject *highest = zero;
    Py_INCREF(highest);
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(inputs); i++) {
        PyObject *x = PyTuple_GET_ITEM(inputs, i), *generation = SLOT(x, off_generation);
        if (!generation) {
            PyErr_Format(PyExc_AttributeError, "'%.100s' object has no attribute 'generation'", Py_TYPE(x)->tp_name);
            goto fail;
        }
        int higher = PyObject_RichCompareBool(generation, highest, Py_GT);
        if (higher < 0) goto fail;
        if (higher) {
            Py_INCREF(generation);
            Py_SETREF(highest, generation);
        }
    }
    PyObject *ticks = PyObject_GetAttr(clock_obj, s_ticks);
    int failed = !ticks || PyObject_SetAttr(self, s_inputs, inputs) < 0 ||
                 PyObject_SetAttr(self, s_recorded_at, ticks) < 0 ||
                 PyObject_SetAttr(self, s_needs_input_grad, needs) < 0 ||
                 PyObject_SetAttr(self, s_generation, highest) < 0;
    Py_XDECREF(ticks);
    if (!failed) return highest;
fail:
    Py_DECREF(highest);
    return NULL;
}

/* The output of a recorded call: a Tensor that requires a gradient, created by self. */
static PyObject *recorded_output(PyObject *self, PyObject *ys, PyObject *generation) {
    PyObject *y = wrap(ys, Py_True), *level = PyNumber_Add(generation, one), *ref = NULL, *outputs = NULL;
    if (y && level) {
        put(y, off_creator, self);
        put(y, off_generation, level);
        if ((ref = PyWeakref_NewRef(y, NULL)) && (outputs = PyTuple_Pack(1, ref)) &&
            PyObject_SetAttr(self, s_outputs, outputs) == 0) {
            Py_DECREF(outputs);
            Py_DECREF(ref);
            Py_DECREF(level);
            return y;
        }
    }
    Py_XDECREF(outputs); Py_XDECREF(ref); Py_XDECREF(level); Py_XDECREF(y);
    return NULL;
}

/* Record the call: self becomes the creator of its output(s). */
static PyObject *record(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *needs, PyObject *ys) {
    PyObject *inputs = PyTuple_New(nargs), *answer = NULL;
    if (!inputs) return NULL;
    for (Py_ssize_t i = 0; i < nargs; i++) {
        Py_INCREF(args[i]);
        PyTuple_SET_ITEM(inputs, i, args[i]);
    }
    if (Py_TYPE(ys) != ndarray_class) {  /* several outputs, or a scalar: Function._record */
        answer = PyObject_CallFunctionObjArgs(record_call, self, inputs, needs, ys, NULL);
    } else {
        PyObject *generation = link_inputs(self, inputs, needs);
        if (generation) {
            answer = recorded_output(self, ys, generation);
            Py_DECREF(generation);
        }
    }
    Py_DECREF(inputs);
    return answer;
}

/* The Python __call__, for every call this file does not take. */
static PyObject *fallback(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    Py_ssize_t named = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    PyObject *all = PyTuple_New(nargs + 1), *keywords = named ? PyDict_New() : NULL, *answer = NULL;
    if (!all || (named && !keywords)) goto out;
    Py_INCREF(self);
    PyTuple_SET_ITEM(all, 0, self);
    for (Py_ssize_t i = 0; i < nargs; i++) {
        Py_INCREF(args[i]);
        PyTuple_SET_ITEM(all, i + 1, args[i]);
    }
    for (Py_ssize_t i = 0; i < named; i++)
        if (PyDict_SetItem(keywords, PyTuple_GET_ITEM(kwnames, i), args[nargs + i]) < 0) goto out;
    answer = PyObject_Call(python_call, all, keywords);
out:
    Py_XDECREF(keywords);
    Py_XDECREF(all);
    return answer;
}

/* Whether self's class keeps Function's own _link and _record (the steps inlined here). */
static int keeps_recording_steps(PyObject *self) {
    return _PyType_Lookup(Py_TYPE(self), s_link) == function_link &&
           _PyType_Lookup(Py_TYPE(self), s_record) == function_record;
}

/* The needs tuple (each input's _requires_grad, read after forward as Python does) and whether the
 * call records: `True in needs` and grad mode on. Returns 1 or 0, or -1 with an exception set. */
static int needs_of(PyObject *const *args, Py_ssize_t nargs, PyObject **needs) {
    int any = 0;
    if (!(*needs = PyTuple_New(nargs))) return -1;
    for (Py_ssize_t i = 0; i < nargs; i++) {
        PyObject *flag = SLOT(args[i], off_requires_grad);
        if (!flag) {
            PyErr_Format(PyExc_AttributeError, "'%.100s' object has no attribute '_requires_grad'",
                         Py_TYPE(args[i])->tp_name);
            return -1;
        }
        Py_INCREF(flag);
        PyTuple_SET_ITEM(*needs, i, flag);
        if (!any) {
            any = flag == Py_True ? 1 : flag == Py_False ? 0 : PyObject_RichCompareBool(flag, Py_True, Py_EQ);
            if (any < 0) return -1;
        }
    }
    if (!any) return 0;
    PyObject *enabled = PyObject_GetAttr(grad_state, s_enabled);
    int on = enabled ? PyObject_IsTrue(enabled) : -1;
    Py_XDECREF(enabled);
    return on;
}

/* settings.NATIVE: 1, 0, or -1 with an exception set. Off, the Python __call__ runs. */
static int native_on(void) {
    PyObject *flag = PyDict_GetItemWithError(settings_dict, s_NATIVE);
    if (!flag) return PyErr_Occurred() ? -1 : 0;
    return flag == Py_True ? 1 : flag == Py_False ? 0 : PyObject_IsTrue(flag);
}

/* Function.__call__(self, *inputs) */
static PyObject *function_call(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    PyObject *stack[MAX_INPUTS + 1];
    int on = native_on();
    if (on < 0) return NULL;
    if (!on || kwnames || nargs == 0 || nargs > MAX_INPUTS || !keeps_recording_steps(self))
        return fallback(self, args, nargs, kwnames);
    for (Py_ssize_t i = 0; i < nargs; i++)
        if (!is_plain_tensor(Py_TYPE(args[i])) || !SLOT(args[i], off_array)) return fallback(self, args, nargs, NULL);
    stack[0] = self;
    for (Py_ssize_t i = 0; i < nargs; i++) {
        stack[i + 1] = SLOT(args[i], off_array);
        Py_INCREF(stack[i + 1]);  /* forward may rebind an input's array */
    }
    PyObject *ys = PyObject_VectorcallMethod(s_forward, stack, (size_t)(nargs + 1), NULL), *needs = NULL, *answer = NULL;
    for (Py_ssize_t i = 0; i < nargs; i++) Py_DECREF(stack[i + 1]);
    if (!ys) return NULL;
    int recording = needs_of(args, nargs, &needs);
    if (recording > 0)
        answer = record(self, args, nargs, needs, ys);
    else if (recording == 0)
        answer = Py_TYPE(ys) == ndarray_class ? wrap(ys, Py_False) : PyObject_CallOneArg(unrecorded, ys);
    Py_XDECREF(needs);
    Py_DECREF(ys);
    return answer;
}

static PyMethodDef call_definition = {"__call__", (PyCFunction)(void (*)(void))function_call,
                                      METH_FASTCALL | METH_KEYWORDS,
                                      "Run the op on Tensors and record it in the graph (Function.__call__)."};

/* ----- _Pass.finish_leaves -----------------------------------------------------------------------
 * finish_plain(pass): each leaf's gradient into its .grad, for a plain backward. The common leaf (no
 * hook, no gradient yet, a fresh ndarray no other leaf holds) is done here; any other goes to
 * _Pass.finish_leaf, which this loop follows. */
static int finish_one(PyObject *self, PyObject *owned, PyObject *tensor, PyObject *grad) {
    PyObject *hooks = is_plain_tensor(Py_TYPE(tensor)) ? SLOT(tensor, off_hooks) : NULL;
    if (hooks == Py_None && SLOT(tensor, off_grad) == Py_None && Py_TYPE(grad) == ndarray_class) {
        PyObject *base = PyObject_GetAttr(grad, s_base), *key = NULL;
        if (!base) return -1;
        int fresh = base == Py_None;
        Py_DECREF(base);
        if (fresh) {
            if (!(key = PyLong_FromVoidPtr(grad))) return -1;
            int held = PySet_Contains(owned, key);
            if (held == 0) {
                PyObject *wrapped = PySet_Add(owned, key) < 0 ? NULL : wrap(grad, Py_False);
                Py_DECREF(key);
                if (!wrapped) return -1;
                put(tensor, off_grad, wrapped);
                Py_DECREF(wrapped);
                return 0;
            }
            Py_DECREF(key);
            if (held < 0) return -1;
        }
    }
    PyObject *done = PyObject_CallMethodObjArgs(self, s_finish_leaf, tensor, grad, Py_True, NULL);
    Py_XDECREF(done);
    return done ? 0 : -1;
}

static PyObject *finish_plain(PyObject *module, PyObject *self) {
    (void)module;
    if (!configured()) return NULL;
    PyObject *leaf_grads = PyObject_GetAttr(self, s_leaf_grads), *owned = NULL, *leaves = NULL, *answer = NULL;
    if (!leaf_grads || !(owned = PyObject_GetAttr(self, s_owned))) goto out;
    if (!PyDict_Check(leaf_grads) || !PySet_Check(owned)) {
        PyErr_SetString(PyExc_TypeError, "nurinet engine: the pass's leaf_grads or owned has the wrong type");
        goto out;
    }
    if (!(leaves = PyDict_Values(leaf_grads))) goto out;  /* a copy: a hook may run meanwhile */
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(leaves); i++) {
        PyObject *pair = PyList_GET_ITEM(leaves, i);
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
            PyErr_SetString(PyExc_TypeError, "nurinet engine: a leaf gradient is not a (tensor, gradient) pair");
            goto out;
        }
        if (finish_one(self, owned, PyTuple_GET_ITEM(pair, 0), PyTuple_GET_ITEM(pair, 1)) < 0) goto out;
    }
    answer = Py_None;
    Py_INCREF(answer);
out:
    Py_XDECREF(leaves); Py_XDECREF(owned); Py_XDECREF(leaf_grads);
    return answer;
}

/* configure_call(Function, grad_state, python_call, record, unrecorded, settings) -> the __call__
 * descriptor to set on Function; configure() comes first. `settings` is the namespace (a dict) whose
 * NATIVE switch the C __call__ reads at every call. */
static PyObject *configure_call(PyObject *module, PyObject *args) {
    (void)module;
    PyObject *given[6];
    if (!PyArg_UnpackTuple(args, "configure_call", 6, 6, &given[0], &given[1], &given[2], &given[3], &given[4],
                           &given[5]))
        return NULL;
    if (!configured()) return NULL;
    if (!PyType_Check(given[0]) || !PyDict_Check(given[5])) {
        PyErr_SetString(PyExc_TypeError, "nurinet engine: Function must be a class and settings a dict");
        return NULL;
    }
    PyObject **kept[5] = {&grad_state, &python_call, &record_call, &unrecorded, &settings_dict};
    for (int i = 0; i < 5; i++) {
        Py_INCREF(given[i + 1]);
        Py_XSETREF(*kept[i], given[i + 1]);
    }
    PyObject *link = _PyType_Lookup((PyTypeObject *)given[0], s_link);
    PyObject *record_ = _PyType_Lookup((PyTypeObject *)given[0], s_record);
    if (!link || !record_) {
        PyErr_SetString(PyExc_TypeError, "nurinet engine: Function has no _link or _record");
        return NULL;
    }
    Py_INCREF(link);
    Py_XSETREF(function_link, link);
    Py_INCREF(record_);
    Py_XSETREF(function_record, record_);
    return PyDescr_NewMethod((PyTypeObject *)given[0], &call_definition);
}

/* Read the offsets of Tensor's slots (its __slots__ member descriptors). */
static int read_offsets(PyTypeObject *t) {
    Py_ssize_t *offsets[SLOT_NAMES] = {&off_array, &off_grad, &off_creator, &off_generation, &off_output_index,
                                       &off_name, &off_hooks, &off_retains_grad, &off_version, &off_requires_grad};
    for (int i = 0; i < SLOT_NAMES; i++)  /* in the order of slot_names */
        if (slot_offset(t, slot_names[i], offsets[i]) < 0) return -1;
    return 0;
}

/* configure(Tensor, ndarray, CLOCK, check_versions, check_count, check_gradient_array, heappush, heappop) */
static PyObject *configure(PyObject *module, PyObject *args) {
    (void)module;
    PyObject *given[8];
    if (!PyArg_UnpackTuple(args, "configure", 8, 8, &given[0], &given[1], &given[2], &given[3], &given[4],
                           &given[5], &given[6], &given[7]))
        return NULL;
    if (!PyType_Check(given[0]) || !PyType_Check(given[1])) {
        PyErr_SetString(PyExc_TypeError, "nurinet engine: Tensor and ndarray must be classes");
        return NULL;
    }
    if (read_offsets((PyTypeObject *)given[0]) < 0) return NULL;
    forget_plain_types();
    PyObject **kept[8] = {(PyObject **)&tensor_class, (PyObject **)&ndarray_class, &clock_obj, &check_versions,
                          &check_count, &check_gradient_array, &heap_push, &heap_pop};
    for (int i = 0; i < 8; i++) {
        Py_INCREF(given[i]);
        Py_XSETREF(*kept[i], given[i]);
    }
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"configure", configure, METH_VARARGS, "Give the engine the Tensor class, the clock and the Python helpers."},
    {"configure_call", configure_call, METH_VARARGS, "Set up Function.__call__ in C; returns its descriptor."},
    {"finish_plain", finish_plain, METH_O, "Give a plain backward's leaves their gradients (_Pass.finish_leaves)."},
    {"drain", drain, METH_O, "Run a backward pass's heap empty (engine._Pass.drain_arrays)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef definition = {PyModuleDef_HEAD_INIT, "_nurinet_engine", NULL, -1, methods,
                                        NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__nurinet_engine(void) {
    if (!s_heap && intern_names() < 0) return NULL;
    return PyModule_Create(&definition);
}
