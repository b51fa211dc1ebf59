import './base.css';
import './git.css';
