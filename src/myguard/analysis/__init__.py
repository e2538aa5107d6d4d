"""Statement analysis: what each statement of a COM_QUERY text does, from the SQL alone."""

from myguard.analysis.analyzer import analyze
from myguard.analysis.model import ColumnName, Statement, TableName

__all__ = ["ColumnName", "Statement", "TableName", "analyze"]
