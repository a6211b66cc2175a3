"""snnedu.functional: the maths as pure tensor functions (no state, no nn.Module)."""
from .neuron import (charge, fire, initial_potential, neuron_multistep, neuron_step,
                     reset_potential, state_multistep)
from .surrogate import (SURROGATES, ATan, Rectangular, Sigmoid, SmoothSpike, Surrogate, Triangle,
                        get_surrogate, heaviside)
