"""Pure query building: range maths, rollup selection and SQL text with bound parameters."""
